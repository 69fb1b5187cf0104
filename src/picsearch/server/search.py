"""The search routes: by text, by uploaded image, and "more like this"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request

from ..errors import InvalidInput
from ..library import Hit, Library
from . import models
from .errors import ApiError
from .pool import LibraryPool
from .uploads import decode_upload, read_upload

__all__ = ["add_search_routes", "MAX_K"]

MAX_K = 200
_ERRORS = models.ERROR_RESPONSES


def _filters(
    k: int = Query(24, ge=1, le=MAX_K, description="number of results"),
    folder: str | None = Query(None, max_length=4096, description="only photos under it"),
    after: str | None = Query(None, max_length=64, description="file time from (ISO or Unix)"),
    before: str | None = Query(None, max_length=64, description="file time before"),
    people: bool | None = Query(None, description="true: photos with people; false: without"),
    has_text: bool | None = Query(None, description="true: photos with words in them"),
    bw: bool | None = Query(None, description="true: black and white photos"),
    color: str | None = Query(None, max_length=32, description="a dominant colour, e.g. red"),
    text_only: bool = Query(False, description="rank by the words read in the photos alone"),
) -> dict[str, Any]:
    concepts = {"people": people, "has_text": has_text, "bw": bw, "color": color or None}
    return {
        "k": k,
        "folder": folder or None,
        "after": _moment(after),
        "before": _moment(before),
        **{name: value for name, value in concepts.items() if value is not None},
        **({"text_only": True} if text_only else {}),
    }


Filters = Annotated[dict[str, Any], Depends(_filters)]


def _moment(value: str | None) -> str | float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def add_search_routes(app: FastAPI, pool: LibraryPool, max_bytes: int, max_pixels: int) -> None:
    uploads = asyncio.Semaphore(4)  # bounds the memory that uploads in flight hold

    @app.get("/api/search", response_model=models.SearchResponse, responses=_ERRORS)
    async def search_text(
        q: Annotated[str, Query(min_length=1, max_length=1000, description="what to find")],
        filters: Filters,
    ) -> models.SearchResponse:
        """Photos that match a text."""
        return await _search(pool, {"text": q, **filters}, lambda lib: _run(lib, q, filters))

    @app.post(
        "/api/search/image",
        response_model=models.SearchResponse,
        responses=_ERRORS,
        openapi_extra={"requestBody": _UPLOAD_BODY},
    )
    async def search_image(request: Request, filters: Filters) -> models.SearchResponse:
        """Photos that look like an uploaded image (multipart field ``file``)."""
        async with uploads:
            name, data = await read_upload(request, max_bytes=max_bytes)

            def job(lib: Library) -> list[Hit]:
                decode_size = lib.encoder.decode_size if len(lib) else 32
                image = decode_upload(data, short_side=decode_size, max_pixels=max_pixels)
                return _run(lib, None, filters, image=image)

            return await _search(pool, {"image": name, **filters}, job)

    @app.get(
        "/api/items/{item_id}/similar", response_model=models.SearchResponse, responses=_ERRORS
    )
    async def similar(item_id: int, filters: Filters) -> models.SearchResponse:
        """More like a stored photo (the photo itself left out)."""

        def job(lib: Library) -> list[Hit]:
            lib.get(item_id)  # an unknown id is "not found", not a bad query
            return _run(lib, None, filters, like=item_id)

        return await _search(pool, {"like": item_id, **filters}, job)


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


def _run(lib: Library, text: str | None, filters: dict[str, Any], **query: Any) -> list[Hit]:
    if not len(lib):
        return []
    return lib.search(text, **query, **filters)


async def _search(
    pool: LibraryPool, query: dict[str, Any], job: Callable[[Library], list[Hit]]
) -> models.SearchResponse:
    start = time.perf_counter()
    try:
        hits = await pool.run(job)
    except InvalidInput as exc:
        raise _not_found_or(exc) from None
    return models.SearchResponse(
        query=query,
        took_ms=round((time.perf_counter() - start) * 1000, 2),
        hits=[_hit(hit) for hit in hits],
    )


def _not_found_or(exc: InvalidInput) -> ApiError:
    status = 404 if str(exc).startswith("no photo with id") else 400
    return ApiError(status, str(exc))


def _hit(hit: Hit) -> models.HitModel:
    fields = models.photo_fields(hit.id, hit.path, hit.metadata)
    return models.HitModel(
        rank=hit.rank, score=hit.score, concepts=hit.concepts, text=hit.text, **fields
    )
