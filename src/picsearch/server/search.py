"""The search routes: by text, by uploaded image, and "more like this"."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request

from ..concepts import COLOUR_NAMES
from ..errors import InvalidInput
from ..library import Hit, Library, Results
from ..library.hits import no_good_match
from ..query import MIN_SCORE_RANGE, SearchQuery
from . import models
from .errors import ApiError
from .paging import ranked_page
from .pool import LibraryPool
from .uploads import FORM_OVERHEAD, decode_upload, read_upload

__all__ = ["add_search_routes", "MAX_K", "UPLOAD_PATH", "UploadBudget"]

MAX_K = 200
#: The deepest a result list pages (start + k): deeper pages cost more each.
MAX_START = 10_000
#: ?start=N: a result list a page at a time (the ranks go on from the last page).
Start = Annotated[int, Query(ge=0, le=MAX_START, description="results to skip: the next page")]
#: The one route that takes an upload.
UPLOAD_PATH = "/api/search/image"
#: Uploads whose image is decoded and searched at once: the memory decoding takes.
SEARCHED_AT_ONCE = 4
#: Bytes of upload bodies held at once, in uploads of the largest size accepted.
UPLOADS_HELD = 4
#: File times are stored as signed 64-bit nanoseconds: about 1677-09-22 to 2262-04-11.
_LIMIT_SECONDS = (2**63 - 1) // 10**9
_ERRORS = models.ERROR_RESPONSES


async def _filters(  # async: FastAPI runs a plain function in a thread of the shared pool
    k: int = Query(24, ge=1, le=MAX_K, description="number of results"),
    folder: str | None = Query(None, max_length=4096, description="only photos under it"),
    after: str | None = Query(
        None, max_length=64, description="taken from (ISO or Unix; else the file time)"
    ),
    before: str | None = Query(None, max_length=64, description="taken before"),
    place: str | None = Query(None, max_length=200, description="a city, region or country"),
    camera: str | None = Query(None, max_length=200, description="part of the camera's name"),
    people: bool | None = Query(None, description="true: photos with people; false: without"),
    has_text: bool | None = Query(None, description="true: photos with words in them"),
    bw: bool | None = Query(None, description="true: black and white photos"),
    color: str | None = Query(
        None,
        max_length=32,
        description="a dominant colour",
        json_schema_extra={"enum": list(COLOUR_NAMES)},
    ),
    text_only: bool = Query(False, description="rank by the words read in the photos alone"),
    min_score: float | None = Query(
        None,
        ge=MIN_SCORE_RANGE[0],
        le=MIN_SCORE_RANGE[1],
        description="leave out photos scoring under it (none: keep them, weak ones flagged)",
    ),
) -> SearchQuery:
    return SearchQuery(
        k=k,
        folder=folder or None,
        after=_moment(after, "after"),
        before=_moment(before, "before"),
        place=place or None,
        camera=camera or None,
        people=people,
        has_text=has_text,
        bw=bw,
        color=color or None,
        text_only=text_only,
        min_score=min_score,
    )


#: The query parameters every search route takes, as a query with nothing to look for yet.
Filters = Annotated[SearchQuery, Depends(_filters)]


#: The filters of a request that gives none: it lists every photo, as those taken from
#: the earliest moment a stored time can hold (a search of the library needs a filter).
_NO_FILTERS = SearchQuery()
_EARLIEST = -_LIMIT_SECONDS


def _echo(query: SearchQuery, **looked_for: Any) -> dict[str, Any]:
    """The query as the answer repeats it: what was looked for, k, folder and dates, and
    the concept filters that were given."""
    concepts: dict[str, bool | str | None] = {
        "people": query.people,
        "has_text": query.has_text,
        "bw": query.bw,
        "color": query.color,
    }
    return {
        **looked_for,
        "k": query.k,
        "folder": query.folder,
        "after": query.after,
        "before": query.before,
        **({"place": query.place} if query.place else {}),
        **({"camera": query.camera} if query.camera else {}),
        **{name: value for name, value in concepts.items() if value is not None},
        **({"text_only": True} if query.text_only else {}),
        **({"min_score": query.min_score} if query.min_score is not None else {}),
    }


def _moment(value: str | None, name: str) -> str | float | None:
    """A date filter as the library takes it: Unix seconds, or the ISO text (which the
    library parses, and refuses with 400 if it is not a date). 422 if out of range."""
    if not value:
        return None
    moment: str | float
    try:
        moment = seconds = float(value)
    except ValueError:
        parsed = _iso_seconds(value, name)
        if parsed is None:
            return value
        moment, seconds = value, parsed
    if not -_LIMIT_SECONDS <= seconds <= _LIMIT_SECONDS:  # also NaN
        raise _out_of_range(name)
    return moment


def _iso_seconds(value: str, name: str) -> float | None:
    """Unix seconds of an ISO date or date-time (naive: local time), or None if not one."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    try:
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):  # years 1 or 9999: out of the clock's range
        raise _out_of_range(name) from None


def _out_of_range(name: str) -> ApiError:
    return ApiError(
        422,
        f"{name} is out of range: use a date between 1677-09-22 and 2262-04-10, "
        f"or Unix seconds within ±{_LIMIT_SECONDS:,}",
    )


def add_search_routes(app: FastAPI, pool: LibraryPool, max_bytes: int, max_pixels: int) -> None:
    searching = asyncio.Semaphore(SEARCHED_AT_ONCE)
    held = UploadBudget(UPLOADS_HELD * (max_bytes + FORM_OVERHEAD))

    @app.get("/api/search", response_model=models.SearchResponse, responses=_ERRORS)
    async def search_text(
        filters: Filters,
        q: Annotated[
            str | None,
            Query(min_length=1, max_length=1000, description="what to find (none: filters alone)"),
        ] = None,
        literal: Annotated[
            bool, Query(description="search q as written: no dates or places read from it")
        ] = False,
        start: Start = 0,
    ) -> models.SearchResponse:
        """Photos that match a text; without one, those the filters allow (with none, the
        whole library), newest first. The dates and the library's place names in q
        ("beach in Lisbon summer 2019") become filters unless ``literal``; the answer's
        ``understood`` says which."""
        query = replace(filters, text=q)
        if q is None and replace(filters, k=_NO_FILTERS.k, folder=None) == _NO_FILTERS:
            query = replace(query, after=_EARLIEST)  # a folder alone lists its photos too
        echo = _echo(filters, text=q, **({"literal": True} if literal else {}))

        def job(lib: Library) -> list[Hit]:
            run = lambda n: _run(lib, replace(query, k=n), understand=not literal)  # noqa: E731
            return ranked_page(run, start=start, k=query.k, in_order=q is None)

        return await _search(pool, echo, job)

    @app.post(
        UPLOAD_PATH,
        response_model=models.SearchResponse,
        responses=_ERRORS,
        openapi_extra={"requestBody": _UPLOAD_BODY},
    )
    async def search_image(request: Request, filters: Filters) -> models.SearchResponse:
        """Photos that look like an uploaded image (multipart field ``file``)."""
        # A search slot is taken only once the whole body is here: clients that send
        # slowly (or stop) hold their connection and the bytes they sent, never a slot
        # (and BodyLimits lets them go). The bytes held by all uploads are bounded.
        async with held.account() as take:
            name, data = await read_upload(request, max_bytes=max_bytes, take=take)

            def job(lib: Library) -> list[Hit]:
                decode_size = lib.encoder.decode_size if len(lib) else 32
                image = decode_upload(data, short_side=decode_size, max_pixels=max_pixels)
                return _run(lib, replace(filters, image=image))

            async with searching:
                return await _search(pool, _echo(filters, image=name), job)

    _add_similar_route(app, pool)


def _add_similar_route(app: FastAPI, pool: LibraryPool) -> None:
    @app.get(
        "/api/items/{item_id}/similar", response_model=models.SearchResponse, responses=_ERRORS
    )
    async def similar(
        item_id: models.ItemId, filters: Filters, start: Start = 0
    ) -> models.SearchResponse:
        """More like a stored photo (the photo itself left out)."""

        def job(lib: Library) -> list[Hit]:
            lib.get(item_id)  # an unknown id is "not found", not a bad query
            run = lambda n: _run(lib, replace(filters, like=item_id, k=n))  # noqa: E731
            return ranked_page(run, start=start, k=filters.k)

        return await _search(pool, _echo(filters, like=item_id), job)


class UploadBudget:
    """The bytes of upload bodies the server holds at once, at most ``limit``. An upload
    that would go over it is refused at once (503) rather than made to wait: waiting
    uploads would hold their bytes and could wait on each other forever."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    @asynccontextmanager
    async def account(self) -> AsyncIterator[Callable[[int], None]]:
        """``take(n)`` counts ``n`` more bytes of this upload; all are given back on exit."""
        taken = 0

        def take(count: int) -> None:
            nonlocal taken
            if self.used + count > self.limit:
                raise ApiError(
                    503,
                    "the server is busy with other uploads: try again in a moment",
                    headers={"Retry-After": "1"},
                )
            self.used += count
            taken += count

        try:
            yield take
        finally:
            self.used -= taken


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


def _run(lib: Library, query: SearchQuery, *, understand: bool = False) -> list[Hit]:
    if not len(lib):
        return []
    return lib.search(query, understand=understand)


async def _search(
    pool: LibraryPool, query: dict[str, Any], job: Callable[[Library], list[Hit]]
) -> models.SearchResponse:
    start = time.perf_counter()
    try:
        hits = await pool.run(job)
    except InvalidInput as exc:
        raise _not_found_or(exc) from None
    understood = hits.understood if isinstance(hits, Results) else None
    return models.SearchResponse(
        query=query,
        took_ms=round((time.perf_counter() - start) * 1000, 2),
        hits=[_hit(hit) for hit in hits],
        no_good_match=no_good_match(hits),
        understood=models.UnderstoodModel(**understood.to_dict()) if understood else None,
    )


def _not_found_or(exc: InvalidInput) -> ApiError:
    status = 404 if str(exc).startswith("no photo with id") else 400
    return ApiError(status, str(exc))


def _hit(hit: Hit) -> models.HitModel:
    fields = models.photo_fields(hit.id, hit.path, hit.metadata)
    return models.HitModel(
        rank=hit.rank,
        score=hit.score,
        weak=hit.weak,
        concepts=hit.concepts,
        text=hit.text,
        **fields,
    )
