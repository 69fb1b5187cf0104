"""LiveIndex: keep serving searches while a rebuild runs in the background.

Updates made during the rebuild are journaled and replayed onto the new index
before it is swapped in (a reference assignment under a lock), so no update
is lost and a search never waits for training.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import AnnIndex

__all__ = ["LiveIndex"]

log = logging.getLogger(__name__)


class LiveIndex:
    """Thread-safe wrapper: add/remove/search now, rebuild in the background."""

    def __init__(self, index: AnnIndex, *, auto_rebuild: bool = False) -> None:
        self._index = index
        self._lock = threading.RLock()
        self._journal: list[tuple[str, Any, Any]] | None = None
        self._thread: threading.Thread | None = None
        self.auto_rebuild = auto_rebuild
        self.last_error: BaseException | None = None
        self.rebuilds = 0

    @property
    def index(self) -> AnnIndex:
        return self._index

    def search(self, queries: Any, k: int, *, subset: Any = None) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._index.search(queries, k, subset=subset)

    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        with self._lock:
            ids = self._index.add(vectors, ids)
            if self._journal is not None:
                self._journal.append(("add", np.array(vectors, dtype=np.float32), ids))
        self._maybe_rebuild()
        return ids

    def remove(self, ids: Any) -> int:
        with self._lock:
            count = self._index.remove(ids)
            if self._journal is not None:
                self._journal.append(("remove", np.array(ids), None))
        self._maybe_rebuild()
        return count

    def _maybe_rebuild(self) -> None:
        if self.auto_rebuild and not self.rebuilding and self._index.needs_rebuild():
            self.rebuild_in_background()

    @property
    def rebuilding(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def rebuild_in_background(self) -> threading.Thread:
        """Start a rebuild (or return the one running); searches continue meanwhile."""
        with self._lock:
            if self.rebuilding:
                return self._thread  # type: ignore[return-value]
            vectors, ids = self._index.vectors_and_ids()
            template = self._index
            self._journal = []
            self._thread = threading.Thread(
                target=self._rebuild, args=(template, vectors, ids), daemon=True
            )
            self._thread.start()
            return self._thread

    def _rebuild(self, template: AnnIndex, vectors: np.ndarray, ids: np.ndarray) -> None:
        try:
            fresh = template.rebuilt_from(vectors, ids)
        except Exception as exc:  # keep serving the old index; report, don't crash
            log.exception("background ANN rebuild failed; keeping the current index")
            with self._lock:
                self.last_error, self._journal = exc, None
            return
        with self._lock:
            for op, payload, ids_ in self._journal or []:
                if op == "add":
                    fresh.add(payload, ids_)
                else:
                    fresh.remove(payload)
            self._index, self._journal = fresh, None
            self.rebuilds += 1

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running rebuild has finished and been swapped in."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def __len__(self) -> int:
        return len(self._index)

    def info(self) -> dict[str, Any]:
        with self._lock:
            return {**self._index.info(), "rebuilding": self.rebuilding, "rebuilds": self.rebuilds}

    def save(self, folder: str | Path) -> Path:
        with self._lock:
            return self._index.save(folder)
