"""ScaNN backend: k-means tree, anisotropic 4-bit AH codes, exact re-ranking.

Two-stage re-ranking. ScaNN scores the codes and re-ranks the best
``reorder`` candidates itself, in C++, from its own re-ranking copy (int8 with
per-dimension multipliers, or float32, after ``reorder_dtype``). picsearch
then re-scores the best ``FINAL_RERANK`` of those from its own copy (int8 with
one scale per vector, or float32), which also serves subsets, the side buffer
and rebuilds. The native stage makes a deep re-rank cheap; the second stage
restores the per-vector int8 precision (ScaNN's per-dimension int8 alone loses
near ties). With float32 the native scores are exact and the second stage is
skipped. Indexes saved before the native stage existed still load and are
re-ranked by picsearch alone. ScaNN's positional ``upsert`` appends new vectors to
the trained tree; removal is a tombstone filtered after an over-fetch, because
ScaNN's delete moves the last vector into the hole and would break positions.
Files: ScaNN's own ``serialize`` output (protobufs and .npy); its docid pickle
is never written nor read.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LibraryError, require
from .base import AnnIndex, Store
from .options import AH, Tree, default_num_leaves
from .store import load_store, make_store

__all__ = ["ScannIndex", "FINAL_RERANK"]

_COPY_FILES = ("int8_dataset.npy", "int8_multipliers.npy", "dp_norms.npy", "dataset.npy")

#: candidates of ScaNN's native re-rank re-scored from picsearch's copy (int8)
FINAL_RERANK = 20


class ScannIndex(AnnIndex):
    backend = "scann"

    def __init__(self, dim: int, options: Any) -> None:
        self._ops = require(
            "scann.scann_ops.py.scann_ops_pybind",
            package="scann",
            extra="ann",
            purpose="backend='scann'",
        )
        self._searcher: Any = None
        self._nbytes_key: tuple[int, int] | None = None
        self._nbytes = 0
        self._copy_nbytes = 0  # of which ScaNN's own re-ranking copy
        self._native = False  # whether ScaNN re-ranks natively (set on build/load)
        super().__init__(dim, options)

    def _make_store(self) -> Store:
        return make_store(self.options.reorder_dtype, self.dim)

    def _load_store(self, folder: Path) -> Store:
        return load_store(self.options.reorder_dtype, folder, self.dim)

    def _min_train(self) -> int | None:
        tree = self.options.tree
        return max(1000, 4 * tree.num_leaves) if tree else 1000

    def _reorder_depth(self) -> int:
        default = 0 if self.options.quantization == "none" else 100
        return default if self.options.reorder is None else self.options.reorder

    def _rerank_count(self) -> int:
        depth = self._reorder_depth()
        if not self._native or not depth:
            return depth
        return 0 if self._store.dtype == "float32" else min(depth, FINAL_RERANK)

    # ---- engine -----------------------------------------------------------
    def _engine_train_add(self, vectors: np.ndarray) -> None:
        n = len(vectors)
        if self.options.tree is None:  # sized from the data: ~sqrt(N) leaves, search 5%
            leaves = default_num_leaves(n)
            self.options = self.options.replace(tree=Tree(leaves, max(1, math.ceil(leaves / 20))))
        tree = self.options.tree
        builder = self._ops.builder(vectors, 10, "dot_product")
        builder = builder.tree(
            num_leaves=tree.num_leaves,
            num_leaves_to_search=tree.num_leaves_to_search,
            training_sample_size=min(n, 250_000),
        )
        q = self.options.quantization or AH()
        if isinstance(q, AH):
            threshold = float("nan") if q.anisotropic_threshold is None else q.anisotropic_threshold
            builder = builder.score_ah(
                q.dims_per_block, anisotropic_quantization_threshold=threshold
            )
            depth = self._reorder_depth()
            if depth:
                kind = self._reorder_type(self._store.dtype)
                builder = builder.reorder(depth, quantize=kind)
            self._native = bool(depth)
        else:
            builder = builder.score_brute_force(self._reorder_type(q))
            self._native = False
        self._searcher = builder.build()

    def _reorder_type(self, dtype: str) -> Any:
        kinds = self._ops.scann_builder.ReorderType
        return kinds.INT8 if dtype == "int8" else kinds.FLOAT32

    def _engine_add(self, vectors: np.ndarray, start: int) -> bool:
        if self._searcher is None or not hasattr(self._searcher.searcher, "upsert"):
            return False  # older ScaNN: the exact side buffer holds them until rebuild
        got = self._searcher.searcher.upsert([None] * len(vectors), vectors, 1)
        if list(got) != list(range(start, start + len(vectors))):
            raise LibraryError("ScaNN upsert did not append at the expected positions")
        return True

    def _engine_search(
        self, queries: np.ndarray, fetch: int, mask: np.ndarray | None, frac: float
    ) -> tuple[np.ndarray, np.ndarray]:
        tree = self.options.tree
        # a filter leaves fewer hits per leaf: search a few more leaves
        leaves = math.ceil(tree.num_leaves_to_search * min(1.0 / max(frac, 1e-9), 4.0))
        pre = fetch
        if self._native:  # the native re-rank looks deeper, over-fetching alike
            depth = self._reorder_depth()
            if frac < 1.0:
                depth = math.ceil(depth / max(frac, 0.02))
            pre = min(max(depth, fetch), self._engine_n)
        pos, scores = self._searcher.search_batched(
            queries,
            final_num_neighbors=fetch,
            pre_reorder_num_neighbors=pre,
            leaves_to_search=min(leaves, tree.num_leaves),
        )
        pos = pos.astype(np.int64)
        pos[np.isnan(scores)] = -1  # ScaNN pads short rows with index 0 / NaN
        return scores, pos

    # ---- persistence and size -------------------------------------------------
    def _engine_save(self, folder: Path) -> None:
        if self._searcher is None:  # too few vectors to train: all in the exact buffer
            return
        target = folder / "scann"
        target.mkdir(exist_ok=True)
        self._searcher.searcher.serialize(str(target), True)

    def _engine_load(self, folder: Path) -> None:
        target = folder / "scann"
        if not target.exists():  # saved before the engine was trained
            return
        assets = (target / "scann_assets.pbtxt").read_text()
        # Built directly (not scann's load_searcher) so no docid pickle is ever read.
        native = self._ops.scann_pybind.ScannNumpy(str(target), assets)
        self._searcher = self._ops.ScannSearcher(native)
        # AH codes live in hashed_dataset.npy; a re-ranking copy means native re-rank
        q = self.options.quantization or AH()
        names = {p.name for p in target.iterdir()}
        self._native = isinstance(q, AH) and bool({"int8_dataset.npy", "dataset.npy"} & names)

    def _engine_nbytes(self) -> int:
        if self._searcher is None:
            return 0
        key = (len(self._ids), self._n_alive)
        if key != self._nbytes_key:  # the serialised size is the measurable one; cache it
            with tempfile.TemporaryDirectory() as tmp:
                self._searcher.searcher.serialize(tmp, True)
                files = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
            self._nbytes = sum(files.values())
            self._copy_nbytes = sum(files.get(name, 0) for name in _COPY_FILES)
            self._nbytes_key = key
        return self._nbytes

    def _engine_info(self) -> dict[str, Any]:
        return {
            "engine": "scann tree + " + _describe(self.options.quantization or AH()),
            "indexed": self._engine_n,
            "rerank": self._rerank_count(),
            "rerank_dtype": self._store.dtype,
            "native_rerank": self._reorder_depth() if self._native else 0,
            # ScaNN's re-ranking copy, part of nbytes' engine share (rest: codes, tree)
            "native_copy_bytes": self._copy_nbytes if self._engine_nbytes() else 0,
        }


def _describe(q: Any) -> str:
    if isinstance(q, AH):
        return f"AH(dims_per_block={q.dims_per_block}, threshold={q.anisotropic_threshold})"
    return f"brute force {q}"
