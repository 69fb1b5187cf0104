"""The browse routes: the timeline (every photo newest first, a page at a time), its
months, the folders and the places, each with counts."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypeVar

from fastapi import FastAPI, Query

from ..catalog.browse import Browser, Cursor, Listed
from ..catalog.folders import FolderTree
from ..display import path_text
from . import models
from .browse_models import (
    CURSOR_PATTERN,
    MAX_PAGE,
    AbsolutePath,
    FolderModel,
    FoldersResponse,
    ListedModel,
    MonthModel,
    MonthsResponse,
    PlaceCount,
    PlacesResponse,
    TimelinePage,
)
from .errors import ApiError
from .pool import LibraryPool

__all__ = ["add_browse_routes", "BrowserPerThread"]

T = TypeVar("T")
_ERRORS = models.ERROR_RESPONSES
_LARGEST = 2**63 - 1
#: Threads that answer browse requests at once.
BROWSE_THREADS = 2


class BrowserPerThread:
    """Threads of their own that answer the browse routes, each with a Browser (an
    SQLite connection stays in the thread that opened it): a page of the timeline
    never waits behind a search or a slow /api/info on the library's threads."""

    def __init__(self, pool: LibraryPool, *, threads: int = BROWSE_THREADS) -> None:
        self.path = pool.library_path
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="picsearch-browse")
        self._local = threading.local()

    async def run(self, job: Callable[[Browser], T]) -> T:
        def in_thread() -> T:
            browser = getattr(self._local, "browser", None)
            if browser is None:
                browser = self._local.browser = Browser(self.path)
            return job(browser)

        return await asyncio.wrap_future(self._threads.submit(in_thread))

    def close(self) -> None:
        # Each thread's Browser (and its connection) goes with the thread.
        self._threads.shutdown(wait=True)


def add_browse_routes(app: FastAPI, browsers: BrowserPerThread) -> None:
    @app.get("/api/timeline", response_model=TimelinePage, responses=_ERRORS)
    async def timeline(
        limit: int = Query(60, ge=1, le=MAX_PAGE, description="photos in this page"),
        cursor: str | None = Query(
            None, pattern=CURSOR_PATTERN, description="where to go on: 'next' of the last page"
        ),
        folder: Annotated[AbsolutePath | None, Query(description="under it")] = None,
        country: str | None = Query(None, min_length=1, max_length=200, description="taken in"),
        city: str | None = Query(None, min_length=1, max_length=200, description="and city"),
    ) -> TimelinePage:
        """Every photo (or those of a folder or place), newest first by capture time."""
        if city is not None and country is None:
            raise ApiError(400, "city needs its country too (as /api/places lists them)")
        after = _cursor(cursor)
        folder_bytes = _folder(folder)
        found = await browsers.run(
            lambda b: b.page(limit, after=after, folder=folder_bytes, country=country, city=city)
        )
        last = found[-1] if len(found) == limit else None
        return TimelinePage(
            items=[_listed(row) for row in found],
            next=None if last is None else f"{last.taken_ns}.{last.id}",
        )

    @app.get("/api/timeline/months", response_model=MonthsResponse, responses=_ERRORS)
    async def months() -> MonthsResponse:
        """Every month with photos, newest first: a jump list for the timeline."""
        found = await browsers.run(lambda b: b.months())
        return MonthsResponse(
            months=[
                MonthModel(month=m.month, count=m.count, cursor=f"{m.start[0]}.{m.start[1]}")
                for m in found
            ]
        )

    _add_folder_and_place_routes(app, browsers)


def _add_folder_and_place_routes(app: FastAPI, browsers: BrowserPerThread) -> None:
    @app.get("/api/folders", response_model=FoldersResponse, responses=_ERRORS)
    async def folders(
        path: Annotated[AbsolutePath | None, Query(description="none: the roots")] = None,
    ) -> FoldersResponse:
        """The folders of the library's photos, with counts: the roots, or one's subfolders."""
        asked = _folder(path)
        tree = await browsers.run(lambda b: b.folders())
        if asked is None:
            return FoldersResponse(folder=None, parent=None, folders=_folders(tree, tree.roots()))
        if not tree.count(asked):
            raise ApiError(404, f"no photos under {path}: /api/folders lists the folders")
        asked = asked.rstrip(b"/") or b"/"
        parent = os.path.dirname(asked) or b"/"
        # Above a root is no folder of the library, only the way to it.
        shown = asked != parent and asked not in tree.roots()
        return FoldersResponse(
            folder=_folder_model(tree, asked),
            parent=path_text(os.fsdecode(parent)) if shown else None,
            folders=_folders(tree, tree.subfolders(asked)),
        )

    @app.get("/api/places", response_model=PlacesResponse, responses=_ERRORS)
    async def places(
        country: str | None = Query(
            None, min_length=1, max_length=200, description="a country: list its cities"
        ),
    ) -> PlacesResponse:
        """Where the photos were taken: countries, or one country's cities, with counts."""
        found = await browsers.run(lambda b: b.places(country))
        return PlacesResponse(
            country=country, places=[PlaceCount(name=n, count=c) for n, c in found]
        )


def _cursor(text: str | None) -> Cursor | None:
    if text is None:
        return None
    taken, _, item = text.partition(".")
    cursor = (int(taken), int(item))
    if abs(cursor[0]) > _LARGEST or cursor[1] > _LARGEST:
        raise ApiError(400, "cursor is out of range: pass the 'next' of the last page")
    return cursor


def _folder(path: str | None) -> bytes | None:
    if path is None:
        return None
    if not os.path.isabs(path) or "\x00" in path:
        raise ApiError(400, f"folder must be an absolute path, as /api/folders gives: {path!r}")
    return os.fsencode(os.path.normpath(path))


def _folders(tree: FolderTree, paths: list[bytes]) -> list[FolderModel]:
    return [_folder_model(tree, path) for path in paths]


def _folder_model(tree: FolderTree, path: bytes) -> FolderModel:
    name = os.path.basename(path) or path
    return FolderModel(
        path=path_text(os.fsdecode(path)),
        name=path_text(os.fsdecode(name)),
        count=tree.count(path),
    )


def _listed(row: Listed) -> ListedModel:
    return ListedModel(**models.file_fields(row), taken=row.taken)
