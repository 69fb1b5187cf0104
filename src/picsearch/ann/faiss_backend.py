"""FAISS backend: IVF with fast-scan PQ (the ScaNN recipe in FAISS terms), or HNSW.

``kind="ivf"``: k-means leaves (``IVF{num_leaves}``) and 4-bit PQ codes scored
with SIMD lookup tables (``PQ{dim/dims_per_block}x4fs``); candidates are
re-ranked exactly from the index's int8/float32 copy. Subsets and
removed vectors are filtered inside the search by an ``IDSelectorBitmap``.

``kind="hnsw"``: ``HNSW{m}`` over float32 vectors; scores are exact already,
so there is no re-ranking copy: the graph's own vectors serve subsets and
rebuilds. HNSW cannot delete, so removal is a tombstone (filtered by selector).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, require
from .base import AnnIndex, Store
from .options import AH, Tree, default_num_leaves
from .store import load_store, make_store

__all__ = ["FaissIndex"]


class _GraphStore:
    """Store adapter for HNSW: reads vectors back from the graph (no copy)."""

    dtype = "engine"

    def __init__(self, owner: FaissIndex) -> None:
        self._owner = owner
        self.dim = owner.dim

    def append(self, vectors: np.ndarray) -> None:
        pass  # the engine add stores them

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        index = self._owner._index
        if isinstance(positions, slice):
            start, stop, _ = positions.indices(index.ntotal)
            return index.reconstruct_n(start, max(stop - start, 0))
        flat = np.asarray(positions, dtype=np.int64).reshape(-1)
        return index.reconstruct_batch(flat).reshape(*np.shape(positions), self.dim)

    def __len__(self) -> int:
        return int(self._owner._index.ntotal)

    def dot_rows(self, queries: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return np.matmul(self.take(positions), queries[:, :, None])[..., 0]

    nbytes = 0  # counted in the engine's bytes

    def save(self, folder: Path) -> None:
        pass


class FaissIndex(AnnIndex):
    backend = "faiss"

    def __init__(self, dim: int, options: Any) -> None:
        self._faiss = require("faiss", package="faiss-cpu", extra="ann", purpose="backend='faiss'")
        self._index: Any = None
        self._nbytes_key: tuple[int, int] | None = None
        self._nbytes = 0
        super().__init__(dim, options)
        if self._hnsw:  # no training: the graph exists from the start
            self._index = self._new_hnsw()

    @property
    def _hnsw(self) -> bool:
        return self.options.kind == "hnsw"

    @property
    def _ivf(self) -> bool:
        return not self._hnsw and self.options.tree is not None

    def _make_store(self) -> Store:
        if self.options.kind == "hnsw":
            return _GraphStore(self)  # type: ignore[return-value]
        return make_store(self.options.reorder_dtype, self.dim)

    def _load_store(self, folder: Path) -> Store:
        if self._hnsw:
            return self._store
        return load_store(self.options.reorder_dtype, folder, self.dim)

    def _min_train(self) -> int | None:
        if self._hnsw:
            return 1
        tree = self.options.tree
        return max(1000, 4 * tree.num_leaves) if tree else 1000

    def _rerank_count(self) -> int:
        if self._hnsw:
            return 0
        default = 0 if self.options.quantization == "none" else 100
        return default if self.options.reorder is None else self.options.reorder

    # ---- engine -----------------------------------------------------------
    def _new_hnsw(self) -> Any:
        index = self._faiss.IndexHNSWFlat(
            self.dim, self.options.hnsw_m, self._faiss.METRIC_INNER_PRODUCT
        )
        index.hnsw.efConstruction = self.options.ef_construction
        return index

    def _factory_string(self) -> str:
        q = self.options.quantization or AH()
        if isinstance(q, AH):
            if self.dim % q.dims_per_block:
                raise InvalidInput(
                    f"dims_per_block={q.dims_per_block} must divide dim={self.dim} "
                    "for backend='faiss' (try 1, 2 or 4)"
                )
            body = f"PQ{self.dim // q.dims_per_block}x4fs"
        else:
            body = {"int8": "SQ8", "none": "Flat"}[q]
        tree = self.options.tree
        return f"IVF{tree.num_leaves},{body}" if tree else body

    def _engine_train_add(self, vectors: np.ndarray) -> None:
        if self._hnsw:
            self._index.add(vectors)
            return
        if self.options.tree is None:
            # "sized from the data": about sqrt(N) leaves, search 5% of them
            leaves = default_num_leaves(len(vectors))
            self.options = self.options.replace(tree=Tree(leaves, max(1, math.ceil(leaves / 20))))
        index = self._faiss.index_factory(
            self.dim, self._factory_string(), self._faiss.METRIC_INNER_PRODUCT
        )
        index.train(vectors)
        self._index = index
        self._engine_add(vectors, 0)

    def _engine_add(self, vectors: np.ndarray, start: int) -> bool:
        if self._index is None:
            return False
        if self._ivf:  # ids = positions, so native removal can find them
            self._index.add_with_ids(vectors, np.arange(start, start + len(vectors)))
        else:
            self._index.add(vectors)  # sequential ids are the positions
        return True

    def _engine_remove(self, positions: np.ndarray) -> None:
        # Fast-scan lists are not touched: in faiss 1.15, remove_ids on an
        # IVF...x4fs index corrupts the vectors added afterwards (half of them
        # stop being found). Tombstones + the selector filter them instead.
        if self._ivf and not isinstance(self.options.quantization or AH(), AH):
            self._index.remove_ids(self._faiss.IDSelectorBatch(positions.astype(np.int64)))

    def _filters_natively(self, subset: bool) -> bool:
        return self._ivf or self._hnsw

    def _engine_search(
        self, queries: np.ndarray, fetch: int, mask: np.ndarray | None, frac: float
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        kwargs: dict[str, Any] = {}
        bits = None
        if mask is not None:  # subset and/or tombstones
            bits = np.packbits(mask, bitorder="little")  # must outlive the search call
            kwargs["sel"] = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        if self._hnsw:
            ef = self.options.ef_search or 64
            params = faiss.SearchParametersHNSW(efSearch=max(ef, fetch), **kwargs)
        elif self._ivf:
            tree = self.options.tree
            # a filter leaves fewer hits per leaf: probe a few more leaves
            probes = math.ceil(tree.num_leaves_to_search * min(1.0 / max(frac, 1e-9), 4.0))
            params = faiss.SearchParametersIVF(nprobe=min(probes, tree.num_leaves), **kwargs)
        else:
            params = None
        scores, pos = self._index.search(queries, fetch, params=params)
        del bits
        return scores, pos

    # ---- persistence and size -------------------------------------------------
    def _engine_save(self, folder: Path) -> None:
        self._faiss.write_index(self._index, str(folder / "faiss.index"))

    def _engine_load(self, folder: Path) -> None:
        self._index = self._faiss.read_index(str(folder / "faiss.index"))

    def _engine_nbytes(self) -> int:
        if self._index is None:
            return 0
        key = (len(self._ids), self._n_alive)
        if key != self._nbytes_key:  # serialising is the honest size; cache it
            self._nbytes = int(self._faiss.serialize_index(self._index).nbytes)
            self._nbytes_key = key
        return self._nbytes

    def _engine_info(self) -> dict[str, Any]:
        if self._hnsw:
            desc = f"HNSW{self.options.hnsw_m},Flat"
        else:
            desc = self._factory_string() if self._index is not None else "untrained"
        return {
            "engine": f"faiss {self._faiss.__version__} {desc}",
            "indexed": self._engine_n,
            "rerank": self._rerank_count(),
            "rerank_dtype": self._store.dtype,
        }
