"""The one index every backend shares: AnnIndex, holding a swappable engine.

An engine (ScaNN, FAISS, or none for exact search) generates candidates and,
when it keeps a re-ranking copy, re-ranks them itself. Everything the user
sees lives here, the same for all engines: the id table, tombstones for
removed vectors, the exact side buffer for vectors the engine does not hold,
subset filters, padding, save/load. The engine is one attribute: a rebuild
that lands on another engine (``auto`` re-measures) swaps it and the
compacted row table together, so the index object never changes class.
One test suite checks every engine against exact search.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, LibraryError
from .checks import check_ids, check_vectors, normalize_rows
from .engine import Engine
from .options import IndexOptions
from .registry import backend_class, builder_for
from .search import LeanPath, SearchMixin, lean_path
from .store import Float32Store, Growable, Int8Store, SplitStore, load_store, make_store

__all__ = ["AnnIndex", "FORMAT_VERSION"]

FORMAT_VERSION = 1
Store = Float32Store | Int8Store | SplitStore
Builder = Callable[[np.ndarray, np.ndarray, IndexOptions], "AnnIndex"]


class AnnIndex(SearchMixin):
    """Batch top-k maximum-inner-product search over vectors with int64 ids.

    Scores are dot products (``distance="cosine"`` normalises for you); results
    are best first and padded with id -1 / score -inf when fewer than k exist.
    """

    def __init__(self, dim: int, options: IndexOptions, engine: Engine | None = None) -> None:
        self.dim = dim
        self._engine: Engine = engine or backend_class(options.backend)(dim, options)
        self._ids = Growable((), np.int64)
        self._alive = Growable((), np.bool_)
        self._store: Store = make_store(self._engine.store_dtype(), dim)
        self._engine_n = 0  # the engine holds positions [0, _engine_n); the rest is buffer
        self._n_alive = 0
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._built_n = 0
        self._changes = 0  # vectors added or removed since the last (re)build
        self._build_seconds = 0.0
        self._recall: dict[str, Any] | None = None
        self._lean: LeanPath | None = None  # see _refresh_lean
        # How rebuilt_from builds a new index for a tuned request ("auto"): set
        # by whoever built this one; else the registry's builder for the request.
        self.rebuilder: Builder | None = None

    @property
    def backend(self) -> str:
        return self._engine.name

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def options(self) -> IndexOptions:
        return self._engine.options

    @options.setter
    def options(self, value: IndexOptions) -> None:
        self._engine.options = value
        self._refresh_lean()  # the pre-bound path holds the search settings

    # ---- construction -------------------------------------------------------
    @classmethod
    def build(cls, vectors: Any, ids: Any = None, options: IndexOptions | None = None) -> AnnIndex:
        """Train on ``vectors`` and index them (ids default to 0..n-1), with the
        engine ``options.backend`` names (never "auto": see ``ann.build``)."""
        options = options or IndexOptions(backend="exact")
        vectors = check_vectors(vectors, None)
        index = cls(vectors.shape[1], options)
        ids = np.arange(len(vectors), dtype=np.int64) if ids is None else ids
        index._fill(vectors, check_ids(ids, len(vectors)))
        return index

    def _fill(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        start = time.perf_counter()
        vectors = self.prepare_vectors(vectors)
        need = self._engine.min_train()
        if need is not None and len(vectors) >= need and len(vectors) > 0:
            order = self._engine.train_add(vectors)
            if order is not None:  # the engine laid the rows out its own way
                ids = ids[order]
            self._engine_n = len(vectors)
            if self._engine.vectors() is not None:  # its copy is the only one
                self._append_rows(vectors, ids, store=False)
                self._borrow_engine_copy()
            else:
                self._append_rows(vectors if order is None else vectors[order], ids)
        else:
            self._append_rows(vectors, ids)
        self._built_n, self._changes = len(vectors), 0
        self._build_seconds = time.perf_counter() - start
        self._refresh_lean()

    def _borrow_engine_copy(self, tail: Store | None = None, offset: int | None = None) -> None:
        """When the engine keeps a re-ranking copy, read engine rows from it and
        keep only later rows here (no second copy)."""
        view = self._engine.vectors()
        if view is None:
            return
        offset = len(view) if offset is None else offset
        tail = make_store(self._engine.store_dtype(), self.dim) if tail is None else tail
        if isinstance(tail, SplitStore):
            tail = tail.tail
        self._store = SplitStore(view, tail, offset)

    def _refresh_lean(self) -> None:
        """Pre-bind the plain search when it may go straight to the engine:
        everything is in it, nothing is tombstoned, and its scores are final."""
        self._lean = None
        if not (
            self._engine_n > 0
            and self._engine_n == len(self._ids) == self._n_alive
            and self._engine.rerank_count() == 0
        ):
            return
        search = self._engine.lean_searcher()
        if search is not None:
            cosine = self.options.distance == "cosine"
            self._lean = lean_path(search, self._ids.view, self.dim, cosine, self._engine_n)

    def prepare_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Rows as the index scores them (unit length under cosine)."""
        return normalize_rows(vectors) if self.options.distance == "cosine" else vectors

    def _append_rows(self, vectors: np.ndarray, ids: np.ndarray, store: bool = True) -> None:
        self._ids.append(ids)
        self._alive.append(np.ones(len(ids), dtype=bool))
        if store:
            self._store.append(vectors)
        self._n_alive += len(ids)
        self._sorted = None
        self._lean = None

    # ---- live updates --------------------------------------------------------
    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        """Add vectors (ids default to max id + 1...); returns the ids used."""
        vectors = check_vectors(vectors, self.dim)
        if ids is None:
            first = int(self._ids.view.max()) + 1 if len(self._ids) else 0
            ids = np.arange(first, first + len(vectors), dtype=np.int64)
        ids = check_ids(ids, len(vectors))
        present = ids[self.positions_of(ids) >= 0]
        if len(present):
            shown = ", ".join(str(i) for i in present[:5])
            raise InvalidInput(f"ids already in the index: {shown} (remove them first)")
        if not len(vectors):
            return ids
        vectors = self.prepare_vectors(vectors)
        start = len(self._ids)
        self._append_rows(vectors, ids)
        # Rows go to the engine only while it holds every earlier position, so
        # the engine always covers [0, _engine_n) and the buffer the rest.
        if self._engine_n == start and self._engine.add(vectors, start):
            self._engine_n += len(vectors)
        self._changes += len(vectors)
        self._refresh_lean()
        return ids

    def absorb(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add rows as part of the build (``auto``'s held-out tuning queries):
        they count as built, not as changes, and when the engine took them its
        re-ranking copy stays the only one."""
        self.add(vectors, ids)
        if self._engine_n == len(self._ids) and self._engine.vectors() is not None:
            self._engine.refresh()
            view = self._engine.vectors()
            if view is not None and len(view) == len(self._ids):
                self._borrow_engine_copy()
        self._built_n, self._changes = len(self._ids), 0
        self._refresh_lean()

    _absorb = absorb  # the name it had before it was public

    def remove(self, ids: Any) -> int:
        """Remove vectors by id (unknown ids are skipped); returns how many went."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        pos = self.positions_of(ids)
        pos = pos[pos >= 0]
        if not len(pos):
            return 0
        self._alive.view[pos] = False
        self._n_alive -= len(pos)
        self._sorted = None
        self._lean = None
        in_engine = pos[pos < self._engine_n]
        if len(in_engine):
            self._engine.remove(in_engine)
        self._changes += len(pos)
        return len(pos)

    def drift(self) -> dict[str, float]:
        """How far the index moved from what its engine was trained on."""
        n = len(self._ids)
        return {
            "changed_since_build": self._changes / max(self._built_n, 1),
            "tombstoned": (n - self._n_alive) / max(n, 1),
            "unindexed": (n - self._engine_n) / max(n, 1) if self._engine.min_train() else 0.0,
        }

    def needs_rebuild(self, *, check_recall: bool = False) -> bool:
        """True when updates drifted past ``rebuild_threshold``, when the engine
        could now be trained, or (check_recall) when recall fell below target."""
        limit = self.options.rebuild_threshold
        if any(value > limit for value in self.drift().values()):
            return True
        need = self._engine.min_train()
        if need is not None and self._engine_n == 0 and self._n_alive >= need:
            return True
        if check_recall and self._n_alive > 1:
            return self.measure_recall()["recall"] < self.options.recall_target
        return False

    def vectors_and_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """The live vectors (from the re-ranking copy) and their ids, in order."""
        pos = np.flatnonzero(self._alive.view)
        return self._store.take(pos), self._ids.view[pos].copy()

    def rebuilt(self) -> AnnIndex:
        """A fresh index over the live vectors; self is left untouched."""
        return self.rebuilt_from(*self.vectors_and_ids())

    def rebuilt_from(self, vectors: np.ndarray, ids: np.ndarray) -> AnnIndex:
        """A new index like this one (same options, or the same `auto` request,
        re-measured) over the given vectors."""
        request = self.options.tuned.get("requested")
        if request is not None:
            builder = self.rebuilder or builder_for(request.get("backend", "auto"))
            if builder is None:
                raise LibraryError(f"no builder registered for backend={request.get('backend')!r}")
            return builder(vectors, ids, IndexOptions.from_dict(request))
        return AnnIndex.build(vectors, ids, self.options)

    def rebuild(self) -> None:
        """Retrain from scratch in place (see LiveIndex to do it in the background).

        The new engine (another one when ``auto`` now measures another faster)
        replaces the old one; the row table is compacted (tombstones dropped)."""
        self.adopt(self.rebuilt())

    def adopt(self, other: AnnIndex) -> None:
        """Take over ``other``'s engine and rows (other must not be used after)."""
        if other.dim != self.dim:
            raise InvalidInput(f"cannot adopt an index of dimension {other.dim} into {self.dim}")
        self._engine, self._store = other._engine, other._store
        self._ids, self._alive = other._ids, other._alive
        self._engine_n, self._n_alive = other._engine_n, other._n_alive
        self._built_n, self._changes = other._built_n, other._changes
        self._build_seconds, self._recall = other._build_seconds, other._recall
        self.rebuilder = other.rebuilder or self.rebuilder
        self._sorted = None
        self._refresh_lean()

    # ---- ids -----------------------------------------------------------------
    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Positions of live ids, -1 where absent (sorted table, built lazily)."""
        if self._sorted is None:
            pos = np.flatnonzero(self._alive.view)
            keys = self._ids.view[pos]
            order = np.argsort(keys, kind="stable")
            self._sorted = (keys[order], pos[order])
        keys, pos = self._sorted
        ids = np.asarray(ids, dtype=np.int64)
        if not len(keys):
            return np.full(ids.shape, -1, np.int64)
        at = np.searchsorted(keys, ids).clip(0, len(keys) - 1)
        return np.where(keys[at] == ids, pos[at], -1)

    def __len__(self) -> int:
        return self._n_alive

    def ids(self) -> np.ndarray:
        """The ids of the live vectors, in insertion order."""
        return self._ids.view[self._alive.view].copy()

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int | np.integer):
            return False
        return bool(self.positions_of(np.array([item]))[0] >= 0)

    # ---- size and description -------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes the index holds: engine codes + re-ranking copy + id table."""
        key = (len(self._ids), self._n_alive)
        return self._engine.nbytes(key) + self._store_nbytes() + 9 * len(self._ids)

    def _store_nbytes(self) -> int:
        return self._store.nbytes

    def info(self) -> dict[str, Any]:
        n = max(self._n_alive, 1)
        return {
            "backend": self.backend,
            "dim": self.dim,
            "size": self._n_alive,
            "options": self.options.to_dict(),
            "engine": {**self._engine.info(), "indexed": self._engine_n},
            "nbytes": self.nbytes,
            "bytes_per_vector": round(self.nbytes / n, 2),
            "rerank_bytes_per_vector": round(self._store_nbytes() / n, 2),
            "float32_bytes_per_vector": 4 * self.dim,
            "build_seconds": round(self._build_seconds, 3),
            "recall": self._recall,
            "auto": self.options.tuned or None,
            "drift": self.drift(),
        }

    def __repr__(self) -> str:
        return f"<AnnIndex backend={self.backend} size={len(self)} dim={self.dim}>"

    # ---- persistence ------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write a JSON manifest, .npy arrays and the engine's own files (no pickle)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": "picsearch-ann",
            "version": FORMAT_VERSION,
            "backend": self.backend,
            "dim": self.dim,
            "options": self.options.to_dict(),
            "state": {
                "engine_n": self._engine_n,
                # rows below this are read back from the engine's re-ranking copy
                "store_offset": self._store.offset if isinstance(self._store, SplitStore) else 0,
                "built_n": self._built_n,
                "changes": self._changes,
                "build_seconds": self._build_seconds,
                "recall": self._recall,
            },
        }
        np.save(folder / "ids.npy", self._ids.view)
        np.save(folder / "alive.npy", self._alive.view)
        self._store.save(folder)
        self._engine.save(folder)
        # The manifest goes last: a folder without one is an unfinished save.
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> AnnIndex:
        folder = Path(folder)
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise LibraryError(f"{folder} holds no readable ANN index manifest: {exc}") from exc
        if manifest.get("format") != "picsearch-ann" or manifest.get("version", 0) > FORMAT_VERSION:
            raise LibraryError(f"{folder}: unknown ANN index format {manifest.get('version')}")
        index = cls(int(manifest["dim"]), IndexOptions.from_dict(manifest["options"]))
        index._restore(folder, manifest["state"])
        return index

    def _restore(self, folder: Path, state: dict[str, Any]) -> None:
        self._ids = Growable((), np.int64, np.load(folder / "ids.npy", allow_pickle=False))
        alive = np.load(folder / "alive.npy", allow_pickle=False)
        self._alive = Growable((), np.bool_, alive)
        self._n_alive = int(alive.sum())
        self._engine_n = int(state["engine_n"])
        self._built_n, self._changes = int(state["built_n"]), int(state["changes"])
        self._build_seconds = float(state.get("build_seconds", 0.0))
        self._recall = state.get("recall")
        if self._engine_n:
            self._engine.load(folder)
        offset = int(state.get("store_offset", 0))
        try:
            self._store = load_store(self._engine.store_dtype(), folder, self.dim)
        except FileNotFoundError:
            if self._engine.vectors() is None:
                raise LibraryError(f"{folder}: the index's vector copy is missing") from None
            # an HNSW graph saved before picsearch kept rows beside it: all in the graph
            self._store, offset = make_store(self._engine.store_dtype(), self.dim), self._engine_n
        if offset:  # saved without the rows the engine's copy holds
            self._borrow_engine_copy(self._store, offset)
        self._refresh_lean()
