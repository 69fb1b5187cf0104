"""The FastAPI application: the JSON API, the photos by id, and the web page."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

from ..version import __version__
from . import models
from .bodies import DEFAULT_BODY_TIMEOUT, BodyLimits
from .browse import BrowserPerThread, add_browse_routes
from .dup_actions import add_duplicate_routes
from .errors import ApiError, UnexpectedErrors, install_handlers
from .items import add_item_routes, add_library_routes
from .pool import DEFAULT_WORKERS, LibraryPool
from .search import MAX_K, UPLOAD_PATH, add_search_routes
from .security import COOKIE, AccessGuard, session_value, token_matches
from .thumbnails import ThumbnailCache, default_folder

__all__ = ["create_app", "MAX_K"]

_STATIC = Path(__file__).parent / "static"
_ASSETS = {"/static/app.js": "text/javascript", "/static/style.css": "text/css"}
#: The page's scripts, served as one /static/app.js in this order (no build step).
_SCRIPTS = ("app.js", "browse.js", "detail.js", "dups.js", "start.js")
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_ERRORS = models.ERROR_RESPONSES


def create_app(
    library_path: str | os.PathLike[str] | None,
    *,
    token: str | None = None,
    max_upload_bytes: int = 20_000_000,
    max_upload_pixels: int = 50_000_000,
    workers: int = DEFAULT_WORKERS,
    thumbnail_dir: str | os.PathLike[str] | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> FastAPI:
    """The web app over the library at ``library_path`` (which must exist).

    ``token``: if given, every API and image request must carry it (see
    ``security``). Uploads above ``max_upload_bytes`` get 413, images above
    ``max_upload_pixels`` 400. ``workers`` threads search at once, each with
    its own Library. Thumbnails are cached in ``thumbnail_dir`` (default: under
    the picsearch cache folder). A request body (an upload) must arrive within
    ``body_timeout`` seconds, else 408; other request bodies above 64 KiB get 413.
    """
    pool = LibraryPool(library_path, workers=workers)
    folder = Path(thumbnail_dir) if thumbnail_dir else default_folder(pool.library_path)

    browsers = BrowserPerThread(pool)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        browsers.close()
        pool.close()

    app = FastAPI(
        title="picsearch",
        version=__version__,
        description="Search a photo library by text, by example image, or like a stored photo.",
        docs_url=None,  # the interactive docs pages load scripts from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    thumbnails = ThumbnailCache(folder)
    app.state.pool, app.state.thumbnails = pool, thumbnails
    install_handlers(app)
    # The last added runs first: the access rules, then the 500 that keeps the
    # connection, then the limits on request bodies around the routes.
    # The upload route counts its body itself, to say what its limit is.
    app.add_middleware(BodyLimits, seconds=body_timeout, sizes={UPLOAD_PATH: None})
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(AccessGuard, token=token)
    _page_routes(app)
    _session_route(app, token)
    add_search_routes(app, pool, max_upload_bytes, max_upload_pixels)
    add_item_routes(app, pool, thumbnails, browsers)
    add_library_routes(app, pool)
    add_browse_routes(app, browsers)
    add_duplicate_routes(app, pool, browsers)
    return app


# -- the page -------------------------------------------------------------------
def _page_routes(app: FastAPI) -> None:
    page = (_STATIC / "index.html").read_bytes()
    assets = {path: (_STATIC / Path(path).name).read_bytes() for path in _ASSETS}
    assets["/static/app.js"] = b"\n".join((_STATIC / name).read_bytes() for name in _SCRIPTS)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        headers = {"Content-Security-Policy": _PAGE_POLICY, "Cache-Control": "no-cache"}
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    # Only these two names: no request ever names a file on disk.
    for path, media_type in _ASSETS.items():
        app.add_api_route(path, _asset(assets[path], media_type), include_in_schema=False)


def _asset(body: bytes, media_type: str) -> Callable[[], Any]:
    async def serve() -> Response:
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return serve


def _session_route(app: FastAPI, token: str | None) -> None:
    @app.post("/api/session", status_code=204, responses=_ERRORS)
    async def session(body: models.TokenRequest) -> Response:
        """Exchange the access token for a cookie, so the page's images load."""
        response = Response(status_code=204)
        if token is not None:
            if not token_matches(body.token, token):
                raise ApiError(401, "wrong access token")
            response.set_cookie(
                COOKIE, session_value(token), httponly=True, samesite="strict", path="/"
            )
        return response
