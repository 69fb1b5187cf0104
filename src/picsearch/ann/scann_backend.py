"""ScaNN engine: k-means tree, anisotropic 4-bit AH codes, native re-ranking.

ScaNN scores the AH codes of the searched leaves and re-ranks the best
``reorder`` candidates itself, in C++, from its own re-ranking copy (int8
with one multiplier per dimension, or float32, after ``reorder_dtype``). That
copy is the only one: picsearch reads it back (memory-mapped from ScaNN's
own serialized file, not a second copy in memory) for subsets, the exact
scan fallback and rebuilds, and keeps only the rows added since the build.
Without AH (``quantization="int8"|"none"``) ScaNN scores brute force and
picsearch keeps and re-ranks from its own copy. ScaNN's positional
``upsert`` appends new vectors to the trained tree; removal is a tombstone
filtered after an over-fetch, because ScaNN's delete moves the last vector
into the hole and would break positions. Files: ScaNN's own ``serialize``
output (protobufs and .npy); its docid pickle is never written nor read.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LibraryError, require
from .engine import Engine, LeanSearch
from .options import AH, Tree, default_num_leaves, leaf_tree

__all__ = ["ScannEngine", "ScannCopy"]

TRAIN_SAMPLE = 100_000
_COPY_FILES = ("int8_dataset.npy", "int8_multipliers.npy", "dp_norms.npy", "dataset.npy")


class ScannCopy:
    """ScaNN's re-ranking copy, decoded on demand: int8 codes divided by one
    multiplier per dimension, or the float32 rows themselves."""

    def __init__(self, folder: Path) -> None:
        if (folder / "int8_dataset.npy").exists():
            self._rows = np.load(folder / "int8_dataset.npy", mmap_mode="r")
            multipliers = np.load(folder / "int8_multipliers.npy", allow_pickle=False)
            self._scale: np.ndarray | None = (1.0 / multipliers).astype(np.float32)
        else:
            self._rows = np.load(folder / "dataset.npy", mmap_mode="r")
            self._scale = None
        self.dim = int(self._rows.shape[1])

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        rows = np.asarray(self._rows[positions], dtype=np.float32)
        if self._scale is not None:
            rows *= self._scale
        return rows

    def __len__(self) -> int:
        return len(self._rows)


class ScannEngine(Engine):
    name = "scann"

    def __init__(self, dim: int, options: Any) -> None:
        self._ops = require(
            "scann.scann_ops.py.scann_ops_pybind",
            package="scann",
            extra="ann",
            purpose="backend='scann'",
        )
        super().__init__(dim, options)
        self._searcher: Any = None  # the pybind ScannNumpy object (no Python wrapper)
        self._copy: ScannCopy | None = None
        self._nbytes_key: tuple[int, int] | None = None
        self._nbytes = 0
        self._copy_nbytes = 0  # of which ScaNN's own re-ranking copy

    def min_train(self) -> int | None:
        tree = self.options.tree
        return max(1000, 4 * tree.num_leaves) if tree else 1000

    def _ah(self) -> AH | None:
        q = self.options.quantization or AH()
        return q if isinstance(q, AH) else None

    def _reorder_depth(self) -> int:
        default = 0 if self.options.quantization == "none" else 100
        return default if self.options.reorder is None else self.options.reorder

    @property
    def _native(self) -> bool:
        """ScaNN re-ranks itself (AH codes plus its re-ranking copy)."""
        return self._ah() is not None and self._reorder_depth() > 0

    def rerank_count(self) -> int:
        # brute-force int8 scoring has no native re-rank: picsearch re-ranks
        return 0 if self._native else self._reorder_depth()

    def vectors(self) -> ScannCopy | None:
        return self._copy if self._native else None

    # ---- engine -----------------------------------------------------------
    def train_add(self, vectors: np.ndarray) -> np.ndarray | None:
        n = len(vectors)
        if self.options.tree is None:  # sized from the data: ~sqrt(N) leaves, search 5%
            leaves = default_num_leaves(n)
            self.options = self.options.replace(tree=Tree(leaves, max(1, math.ceil(leaves / 20))))
        tree = leaf_tree(self.options)
        builder = self._ops.builder(vectors, 10, "dot_product")
        builder = builder.tree(
            num_leaves=tree.num_leaves,
            num_leaves_to_search=tree.num_leaves_to_search,
            # ScaNN's own default sample: k-means on more points costs build time
            # (linear in the sample) for little recall at ~100+ points per leaf
            training_sample_size=min(n, TRAIN_SAMPLE),
            # Unit-norm centroids: ScaNN assigns the vectors to leaves by L2 but
            # the queries by dot product, and with plain k-means centroids of
            # unequal norms the two disagree (clustered 300k x 128, 1095
            # leaves, 1 leaf searched, 200 re-ranked: recall 0.72 -> 0.89).
            spherical=True,
        )
        q = self._ah()
        if q is not None:
            threshold = float("nan") if q.anisotropic_threshold is None else q.anisotropic_threshold
            builder = builder.score_ah(
                q.dims_per_block, anisotropic_quantization_threshold=threshold
            )
            if self._native:
                kind = self._reorder_type(self.options.reorder_dtype)
                builder = builder.reorder(self._reorder_depth(), quantize=kind)
        else:
            builder = builder.score_brute_force(self._reorder_type(self.options.quantization))
        self._searcher = builder.build().searcher
        if self._native:
            self._copy = self._read_back_copy()
        return None

    def _read_back_copy(self) -> ScannCopy:
        """Map ScaNN's re-ranking copy from its serialized file. The temporary
        folder goes at once: the mapping keeps the file's pages reachable."""
        folder = Path(tempfile.mkdtemp(prefix="picsearch-scann-"))
        try:
            self._searcher.serialize(str(folder), True)
            self._measure_files(folder)
            return ScannCopy(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _reorder_type(self, dtype: object) -> Any:
        kinds = self._ops.scann_builder.ReorderType
        return kinds.INT8 if dtype == "int8" else kinds.FLOAT32

    def add(self, vectors: np.ndarray, start: int) -> bool:
        if self._searcher is None or not hasattr(self._searcher, "upsert"):
            return False  # older ScaNN: the exact side buffer holds them until rebuild
        got = self._searcher.upsert([None] * len(vectors), vectors, 1)
        if list(got) != list(range(start, start + len(vectors))):
            raise LibraryError("ScaNN upsert did not append at the expected positions")
        return True

    def refresh(self) -> None:
        if self._native and self._searcher is not None:
            self._copy = self._read_back_copy()

    def search(
        self, queries: np.ndarray, fetch: int, mask: np.ndarray | None, frac: float
    ) -> tuple[np.ndarray, np.ndarray]:
        tree = leaf_tree(self.options)
        # a filter leaves fewer hits per leaf: search a few more leaves
        leaves = math.ceil(tree.num_leaves_to_search * min(1.0 / max(frac, 1e-9), 4.0))
        pre = fetch
        size = self._searcher.size()
        if self._native:  # the native re-rank looks deeper, over-fetching alike
            depth = self._reorder_depth()
            if frac < 1.0:
                depth = math.ceil(depth / max(frac, 0.02))
            pre = min(max(depth, fetch), size)
        pos, scores = self._searcher.search_batched(
            queries, fetch, pre, min(leaves, tree.num_leaves), False, 0
        )
        pos = pos.astype(np.int64)
        pos[np.isnan(scores)] = -1  # ScaNN pads short rows with index 0 / NaN
        return scores, pos

    def lean_searcher(self) -> LeanSearch | None:
        if self._searcher is None:
            return None
        depth = self._reorder_depth() if self._native else 0
        leaves = leaf_tree(self.options).num_leaves_to_search
        one, batched = self._searcher.search, self._searcher.search_batched

        def nothing(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
            return np.full((n, k), np.nan, np.float32), np.zeros((n, k), np.int64)

        def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            pre = max(depth, k)
            try:
                if len(queries) == 1:  # ScaNN's single-query call skips the batch set-up
                    pos, scores = one(queries[0], k, pre, leaves)
                    if len(pos) < k:  # short: pad as search_batched does
                        return nothing(1, k)
                    return scores.reshape(1, k), pos.reshape(1, k)
                pos, scores = batched(queries, k, pre, leaves, False, 0)
            except RuntimeError:  # it refuses NaN or inf: the general path says which rows
                return nothing(len(queries), k)
            return scores, pos  # short rows: NaN scores

        return search

    # ---- persistence and size -------------------------------------------------
    def save(self, folder: Path) -> None:
        if self._searcher is None:  # too few vectors to train: all in the exact buffer
            return
        target = folder / "scann"
        # Unlink, never overwrite in place: a loaded copy may be mapped from there.
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        self._searcher.serialize(str(target), True)

    def load(self, folder: Path) -> None:
        target = folder / "scann"
        if not target.exists():  # saved before the engine was trained
            return
        assets = (target / "scann_assets.pbtxt").read_text()
        # Built directly (not scann's load_searcher) so no docid pickle is ever read.
        self._searcher = self._ops.scann_pybind.ScannNumpy(str(target), assets)
        names = {p.name for p in target.iterdir()}
        if self._native and {"int8_dataset.npy", "dataset.npy"} & names:
            self._copy = ScannCopy(target)

    def _measure_files(self, folder: Path) -> None:
        files = {p.name: p.stat().st_size for p in folder.iterdir()}
        self._nbytes = sum(files.values())
        self._copy_nbytes = sum(files.get(name, 0) for name in _COPY_FILES)

    def nbytes(self, key: tuple[int, int]) -> int:
        if self._searcher is None:
            return 0
        if key != self._nbytes_key:  # the serialised size is the measurable one; cache it
            with tempfile.TemporaryDirectory() as tmp:
                self._searcher.serialize(tmp, True)
                self._measure_files(Path(tmp))
            self._nbytes_key = key
        return self._nbytes

    def info(self) -> dict[str, Any]:
        q = self._ah()
        desc = (
            f"AH(dims_per_block={q.dims_per_block}, threshold={q.anisotropic_threshold})"
            if q is not None
            else f"brute force {self.options.quantization}"
        )
        return {
            "engine": "scann tree + " + desc,
            "rerank": self.rerank_count(),
            "rerank_dtype": self.options.reorder_dtype,
            "native_rerank": self._reorder_depth() if self._native else 0,
            # ScaNN's re-ranking copy, part of the engine's bytes (rest: codes, tree)
            "native_copy_bytes": self._copy_nbytes if self._searcher is not None else 0,
        }
