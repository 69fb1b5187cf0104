"""A few worker threads, each with its own Library.

A Library holds a SQLite connection, which belongs to the thread that opened
it, and keeps its own copy of the vector index in step with the catalog. So
each worker opens one and runs the jobs it takes from a shared queue: reads
never wait on each other's connection, and every search first applies what
``picsearch index`` committed meanwhile (whole transactions only).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from ..encoders import PreparesImages
from ..library import Library

__all__ = ["LibraryPool", "DEFAULT_WORKERS"]

log = logging.getLogger("picsearch.server")
T = TypeVar("T")
Job = Callable[[Library], T]

#: Threads that search at once. On two cores, two workers gave the most requests/s
#: under load (benchmarks/server.py); more only add copies of the index.
DEFAULT_WORKERS = 2


class LibraryPool:
    """``workers`` threads with a Library each; ``await pool.run(job)`` runs ``job(library)``."""

    def __init__(
        self, path: str | os.PathLike[str] | None, *, workers: int = DEFAULT_WORKERS
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.path = path
        self._jobs: queue.SimpleQueue[tuple[Job, Future] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # The first worker opens its library (and loads the model) before the others
        # start, so a bad path fails here and the model is never loaded twice at once.
        for number in range(workers):
            self._start(number)

    def _start(self, number: int) -> None:
        opened: Future[Path] = Future()
        thread = threading.Thread(
            target=self._work, args=(opened,), name=f"picsearch-library-{number}", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        self.library_path = opened.result()

    def _work(self, opened: Future[Path]) -> None:
        try:
            library = Library(self.path, create=False)
            _warm_up(library)
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(library.path)
        try:
            while (task := self._jobs.get()) is not None:
                job, future = task
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job(library))
                    except BaseException as exc:
                        future.set_exception(exc)
        finally:
            library.close()

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        self._jobs.put((job, future))
        return future

    async def run(self, job: Callable[[Library], T]) -> T:
        """Run ``job(library)`` on a worker and wait for it without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(job))

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()


def _warm_up(library: Library) -> None:
    """Load the model and this worker's index now rather than on the first request."""
    if not len(library):
        return
    library.search("a photo", k=1)
    if isinstance(library.encoder, PreparesImages):
        library.encoder.prepare_images()
