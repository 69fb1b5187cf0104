"""The routes of stored photos (metadata, thumbnail, original) and of the library
(info, health)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse

from ..catalog import Row
from ..errors import InvalidInput
from ..version import __version__
from . import models
from .browse import BrowserPerThread
from .dup_actions import dups_module
from .errors import ApiError
from .files import NotServable, checked_chunks, open_checked
from .pool import LibraryPool
from .thumbnails import DEFAULT_SIZE, SIZES, ThumbnailCache

__all__ = ["add_item_routes", "add_library_routes"]

log = logging.getLogger("picsearch.server")
T = TypeVar("T")
_ERRORS = models.ERROR_RESPONSES
#: Threads that read originals and make thumbnails at once. Their own pool: requests
#: waiting for a large photo's thumbnail never hold up the threads everything else uses.
FILE_THREADS = 8
_MEDIA_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".png": "image/png",
    ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff",
    ".tiff": "image/tiff",
}  # fmt: skip


async def _stored(files: BrowserPerThread, item_id: int) -> Row:
    # The content hash (which keys thumbnails and guards originals) is not on Item. Read
    # on the browse threads: a screen of thumbnails never waits behind searches.
    row = await files.run(lambda browser: browser.stored(item_id))
    if row is None:
        raise ApiError(404, f"no photo with id {item_id}")
    return row


def add_item_routes(
    app: FastAPI, pool: LibraryPool, thumbnails: ThumbnailCache, browsers: BrowserPerThread
) -> None:
    files = anyio.CapacityLimiter(FILE_THREADS)

    @app.get("/api/items/{item_id}", response_model=models.ItemModel, responses=_ERRORS)
    async def item(item_id: models.ItemId) -> models.ItemModel:
        """A stored photo's metadata."""
        try:
            found, seen = await pool.run(lambda lib: (lib.get(item_id), lib.concepts(item_id)))
        except InvalidInput as exc:
            raise ApiError(404, str(exc)) from None
        concepts = {c["name"]: c["confidence"] for c in seen["concepts"]}
        fields = models.photo_fields(found.id, found.path, found.metadata)
        return models.ItemModel(concepts=concepts, text=seen["text"], **fields)

    @app.get("/api/items/{item_id}/thumbnail", responses=_ERRORS | _JPEG)
    async def thumbnail(
        request: Request,
        item_id: models.ItemId,
        size: int = Query(
            DEFAULT_SIZE, description="longest side", json_schema_extra={"enum": list(SIZES)}
        ),
    ) -> Response:
        """A JPEG thumbnail of a stored photo, made once and cached."""
        if size not in SIZES:
            raise ApiError(400, f"size must be one of {', '.join(map(str, SIZES))}")
        row = await _stored(browsers, item_id)
        etag = f'"{row.id}-{row.hash}-{size}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        make = functools.partial(thumbnails.get, row.id, digest=row.hash, pixels=size)
        data = await _served(files, make, path=row.path, size=row.size)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type="image/jpeg", headers=headers)

    @app.get("/api/items/{item_id}/image", responses=_ERRORS | _IMAGE)
    async def image(item_id: models.ItemId) -> Response:
        """The original file of a stored photo, as it was indexed."""
        row = await _stored(browsers, item_id)
        handle = await _served(files, open_checked, row.path, size=row.size, digest=row.hash)
        extension = os.path.splitext(row.path)[1].lower()
        media_type = _MEDIA_TYPES.get(extension, "application/octet-stream")
        headers = {
            "Cache-Control": "private, no-cache",
            "Content-Disposition": "inline",
            "Content-Length": str(row.size),
        }
        # Sent a chunk at a time: a large original is never held whole in memory.
        return StreamingResponse(
            _streamed(handle, row, files), media_type=media_type, headers=headers
        )


_JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}}
_IMAGE: dict[int | str, dict[str, Any]] = {200: {"content": {"image/*": {}}}}


async def _streamed(
    handle: BinaryIO, row: Row, threads: anyio.CapacityLimiter
) -> AsyncIterator[bytes]:
    """An original's chunks, each read in a thread; a file changed meanwhile ends the
    response early (the client sees it cut short, never a whole changed file)."""
    chunks = checked_chunks(handle, path=row.path, size=row.size, digest=row.hash)
    try:
        while chunk := await anyio.to_thread.run_sync(next, chunks, b"", limiter=threads):
            yield chunk
    finally:
        chunks.close()
        handle.close()  # also when the client went away before the first chunk


async def _served(
    threads: anyio.CapacityLimiter, read: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    try:
        return await anyio.to_thread.run_sync(
            functools.partial(read, *args, **kwargs), limiter=threads
        )
    except NotServable as exc:
        # The reason (a symlink out of its folder, a changed file) goes to the log only.
        log.info("not served: %s", exc)
        raise ApiError(404, "this photo's file is not available") from None


def add_library_routes(app: FastAPI, pool: LibraryPool) -> None:
    @app.get("/api/health", response_model=models.HealthModel, responses=_ERRORS)
    async def health() -> models.HealthModel:
        return models.HealthModel(status="ok", items=await pool.run(len))

    @app.get("/api/info", response_model=models.InfoModel, responses=_ERRORS)
    async def info() -> models.InfoModel:
        """What the library holds, and which features this server has."""
        found = (await pool.run(lambda lib: lib.info())).to_dict()
        found = {k: v for k, v in found.items() if k in models.InfoModel.model_fields}
        return models.InfoModel(**found, duplicates=dups_module() is not None, version=__version__)
