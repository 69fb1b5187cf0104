"""Errors at the HTTP edge: every one is ``{"error": {"status", "message"}}``, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import InvalidInput, LibraryError, MissingDependency, PicsearchError

__all__ = ["ApiError", "error_response", "install_handlers"]

log = logging.getLogger("picsearch.server")


class ApiError(HTTPException):
    """An error with a status and a message meant for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status_code=status, detail=message)


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


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
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error: the server log has the details")
