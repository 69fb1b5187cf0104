"""The ANN index of one vector space of a library, kept in step with its catalog.

Each space ("joint", "visual") has a folder beside the library file. A small
pointer file names the index folder in use and the catalog generation it
reflects; it is replaced atomically, so a reader never sees a half-written
index. Between saves, any reader brings its copy up to date by applying the
catalog's changes since that generation (live updates, no rebuild).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from . import ann
from .catalog import Catalog
from .errors import LibraryError

__all__ = ["SpaceIndex"]

log = logging.getLogger("picsearch")


class SpaceIndex:
    """One space's index: loaded or built on first use, then updated incrementally."""

    def __init__(self, folder: Path, space: str, dim: int, options: ann.IndexOptions) -> None:
        self.folder, self.space, self.dim, self.options = folder, space, dim, options
        self.live: ann.LiveIndex | None = None
        self.synced = -1  # the catalog generation the index reflects

    @property
    def _pointer(self) -> Path:
        return self.folder / f"{self.space}.json"

    def sync(self, catalog: Catalog) -> ann.LiveIndex:
        """The index, brought up to date with the catalog."""
        generation = catalog.generation
        if self.live is None:
            self._load_saved()
        if self.live is None:
            ids, vectors = catalog.space_vectors(self.space, self.dim)
            self.live = ann.LiveIndex(ann.build(vectors, ids, self.options))
        elif self.synced != generation:
            self._apply_changes(catalog)
        self.synced = generation
        return self.live

    def _load_saved(self) -> None:
        try:
            pointer = json.loads(self._pointer.read_text())
            index = ann.load(self.folder / pointer["folder"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, LibraryError) as exc:
            log.warning("rebuilding the %s index of the library: %s", self.space, exc)
            return
        self.live, self.synced = ann.LiveIndex(index), int(pointer["generation"])

    def _apply_changes(self, catalog: Catalog) -> None:
        assert self.live is not None
        changed, vectors = catalog.space_vectors(self.space, self.dim, since=self.synced)
        indexed = self.live.index.ids()
        gone = np.setdiff1d(indexed, catalog.ids(), assume_unique=True)
        stale = np.intersect1d(indexed, changed, assume_unique=True)
        if len(gone) or len(stale):
            self.live.remove(np.concatenate([gone, stale]))
        if len(changed):
            self.live.add(vectors, changed)

    def maintain(self, catalog: Catalog) -> dict[str, Any]:
        """After an index run: rebuild if drift says so, then save. Returns the index info."""
        live = self.sync(catalog)
        if _should_rebuild(live.index):
            log.info("rebuilding the %s index (drift %s)", self.space, live.index.drift())
            live.rebuild_in_background()
            live.wait()  # other processes keep searching the saved index meanwhile
        self.save()
        return live.info()

    def save(self) -> None:
        """Write the index to a new folder, then switch the pointer to it atomically."""
        if self.live is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.live.index.backend == "exact":
            # Small libraries: nothing worth saving, the catalog is the index.
            self._pointer.unlink(missing_ok=True)
            self._remove_old(keep=None)
            return
        name = f"{self.space}-{self.synced}"
        target = self.folder / name
        if target.exists():
            shutil.rmtree(target)
        self.live.save(target)
        temporary = self._pointer.with_suffix(".tmp")
        temporary.write_text(json.dumps({"folder": name, "generation": self.synced}))
        os.replace(temporary, self._pointer)
        self._remove_old(keep=name)

    def _remove_old(self, keep: str | None) -> None:
        for path in self.folder.glob(f"{self.space}-*"):
            if path.is_dir() and path.name != keep:
                shutil.rmtree(path, ignore_errors=True)


def _should_rebuild(index: ann.AnnIndex) -> bool:
    """Rebuild when updates drifted far enough to cost recall, never just because.

    An exact index is cheap to redo, and redoing it lets ``auto`` move to an
    ANN index once the library has grown past the size where exact is fast.
    """
    if not index.needs_rebuild():
        return False
    if index.backend == "exact" or index.drift()["unindexed"] > index.options.rebuild_threshold:
        return True
    return index.measure_recall()["recall"] < index.options.recall_target
