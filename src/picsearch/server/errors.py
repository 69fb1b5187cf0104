"""Errors at the HTTP edge: every one is ``{"error": {"status", "message"}}``, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..display import path_text
from ..errors import InvalidInput, LibraryError, MissingDependency, PicsearchError

__all__ = ["ApiError", "UnexpectedErrors", "error_response", "install_handlers"]

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_INTERNAL = "internal error: the server log has the details"

log = logging.getLogger("picsearch.server")


class ApiError(HTTPException):
    """An error with a status and a message meant for the client."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    # A message may name a file whose name is not UTF-8, which JSON cannot carry as is.
    body = {"error": {"status": status, "message": path_text(message)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(exc: PicsearchError) -> int:
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, MissingDependency):
        return 501
    if isinstance(exc, LibraryError):
        return 503
    return 500


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return 404, "not found"  # a malformed id names nothing, like an unknown one
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return 400, "; ".join(parts)


def install_handlers(app: FastAPI) -> None:
    """Turn every exception into the JSON error body."""

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = "not found"
        return error_response(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return error_response(status, message)

    @app.exception_handler(PicsearchError)
    async def picsearch_error(_: Request, exc: PicsearchError) -> JSONResponse:
        return error_response(_status_of(exc), str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only what fails outside UnexpectedErrors (in the middleware around it) lands here.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, _INTERNAL)


class UnexpectedErrors:
    """ASGI middleware: any unexpected exception is answered with the JSON 500, and the
    keep-alive connection stays usable.

    Starlette's last-resort handler answers too, but then re-raises, and the server
    closes the connection on an exception, so the client's next request on it fails.
    """

    def __init__(self, app: Callable[[_Scope, _Receive, _Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # half a response cannot be taken back: let the server cut it off
                raise
            log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
            await error_response(500, _INTERNAL)(scope, receive, send)
