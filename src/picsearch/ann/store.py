"""Vector stores (exact scoring and re-ranking data) and top-k helpers.

Positions are insertion slots 0..n-1; they never move until a rebuild
compacts them, so engines, stores and the id table can all be indexed by them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .engine import VectorView

__all__ = [
    "Growable",
    "SplitStore",
    "Float32Store",
    "Int8Store",
    "make_store",
    "load_store",
    "topk",
    "merge_topk",
    "scan_topk",
    "score_candidates",
]

# Rows per block when scanning a store: bounds the (queries x rows) score matrix.
_SCAN_CELLS = 1 << 24
# Re-ranking gathers (queries x candidates x dim) rows as float32; blocks this
# small stay in cache (measured 2-3x faster than one big gather at dim 1280).
_GATHER_CELLS = 1 << 18


class Growable:
    """An append-only array with amortised O(1) appends (capacity doubling), so
    small live additions to a large index do not copy the whole array."""

    def __init__(self, tail: tuple[int, ...], dtype: type, data: np.ndarray | None = None):
        self._buf = np.empty((0, *tail), dtype=dtype) if data is None else data
        self._n = len(self._buf)

    def append(self, rows: np.ndarray) -> None:
        need = self._n + len(rows)
        if need > len(self._buf):
            cap = max(need, 2 * len(self._buf), 16)
            grown = np.empty((cap, *self._buf.shape[1:]), dtype=self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : need] = rows
        self._n = need

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n


class Float32Store:
    """Full-precision copy: the exact reference, 4 bytes per dimension."""

    dtype = "float32"

    def __init__(self, dim: int, data: np.ndarray | None = None) -> None:
        self.dim = dim
        self._data = Growable((dim,), np.float32, data)

    def append(self, vectors: np.ndarray) -> None:
        self._data.append(vectors)

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        return self._data.view[positions]

    def __len__(self) -> int:
        return len(self._data)

    def dot_rows(self, queries: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """(nq, c) dot products of each query with its own c rows."""
        rows = self._data.view[positions]
        return np.matmul(rows, queries[:, :, None])[..., 0]

    @property
    def nbytes(self) -> int:
        return len(self._data) * self.dim * 4

    def save(self, folder: Path) -> None:
        np.save(folder / "store_float32.npy", self._data.view)

    @classmethod
    def load(cls, folder: Path, dim: int) -> Float32Store:
        return cls(dim, np.load(folder / "store_float32.npy", allow_pickle=False))


class Int8Store:
    """int8 codes with one scale per vector: dim + 4 bytes per vector, and a dot
    product error far below the gaps between neighbours of normalised vectors."""

    dtype = "int8"

    def __init__(
        self, dim: int, codes: np.ndarray | None = None, scales: np.ndarray | None = None
    ) -> None:
        self.dim = dim
        self._codes = Growable((dim,), np.int8, codes)
        self._scales = Growable((), np.float32, scales)

    def append(self, vectors: np.ndarray) -> None:
        peak = np.abs(vectors).max(axis=1) if len(vectors) else np.empty(0, np.float32)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        codes = np.rint(vectors / scales[:, None]).clip(-127, 127).astype(np.int8)
        self._codes.append(codes)
        self._scales.append(scales)

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        codes = self._codes.view[positions].astype(np.float32)
        codes *= self._scales.view[positions][..., None]
        return codes

    def __len__(self) -> int:
        return len(self._codes)

    def dot_rows(self, queries: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """(nq, c) dot products; the scale is applied to the scores, not the rows."""
        rows = self._codes.view[positions].astype(np.float32)
        return np.matmul(rows, queries[:, :, None])[..., 0] * self._scales.view[positions]

    @property
    def nbytes(self) -> int:
        return len(self._codes) * (self.dim + 4)

    def save(self, folder: Path) -> None:
        np.save(folder / "store_int8.npy", self._codes.view)
        np.save(folder / "store_scales.npy", self._scales.view)

    @classmethod
    def load(cls, folder: Path, dim: int) -> Int8Store:
        codes = np.load(folder / "store_int8.npy", allow_pickle=False)
        scales = np.load(folder / "store_scales.npy", allow_pickle=False)
        return cls(dim, codes, scales)


def make_store(dtype: str, dim: int) -> Float32Store | Int8Store:
    return Int8Store(dim) if dtype == "int8" else Float32Store(dim)


def load_store(dtype: str, folder: Path, dim: int) -> Float32Store | Int8Store:
    return Int8Store.load(folder, dim) if dtype == "int8" else Float32Store.load(folder, dim)


def topk(scores: np.ndarray, cols: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-first top-k of each row; cols maps columns to positions (None: identity).
    Rows with fewer than k columns are padded with -inf / -1."""
    nq, m = scores.shape
    if m > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(scores, part, axis=1)
        cols = part if cols is None else np.take_along_axis(cols, part, axis=1)
    elif cols is None:
        cols = np.broadcast_to(np.arange(m), (nq, m))
    order = np.argsort(-scores, axis=1, kind="stable")
    scores = np.take_along_axis(scores, order, axis=1)
    cols = np.take_along_axis(cols, order, axis=1).astype(np.int64)
    cols[~np.isfinite(scores)] = -1
    if scores.shape[1] < k:
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        cols = np.pad(cols, ((0, 0), (0, pad)), constant_values=-1)
    return scores.astype(np.float32), cols


def merge_topk(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([p[0] for p in parts], axis=1)
    cols = np.concatenate([p[1] for p in parts], axis=1)
    return topk(scores, cols, k)


def scan_topk(
    queries: np.ndarray,
    store: Float32Store | Int8Store,
    k: int,
    positions: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by brute force over ``positions`` (default: all rows of the
    store), skipping rows where ``mask`` is False. Works block by block so memory
    stays bounded whatever the collection size."""
    total = len(store) if positions is None else len(positions)
    block = max(1024, _SCAN_CELLS // max(len(queries), 1))
    best = (
        np.full((len(queries), k), -np.inf, np.float32),
        np.full((len(queries), k), -1, np.int64),
    )
    for start in range(0, total, block):
        stop = min(start + block, total)
        pos = np.arange(start, stop) if positions is None else positions[start:stop]
        rows = store.take(slice(start, stop) if positions is None else pos)
        scores = queries @ rows.T
        if mask is not None:
            scores[:, ~mask[pos]] = -np.inf
        cols = np.broadcast_to(pos, scores.shape)
        best = merge_topk([best, topk(scores, cols, k)], k)
    return best


def score_candidates(
    queries: np.ndarray, store: Float32Store | Int8Store, positions: np.ndarray
) -> np.ndarray:
    """Exact scores of each query against its own candidate positions (-1 = none)."""
    out = np.full(positions.shape, -np.inf, np.float32)
    step = max(1, _GATHER_CELLS // max(positions.shape[1] * store.dim, 1))
    for start in range(0, len(queries), step):
        pos = positions[start : start + step]
        valid = pos >= 0
        safe = np.where(valid, pos, 0)
        scores = store.dot_rows(queries[start : start + step], safe)
        out[start : start + step] = np.where(valid, scores, -np.inf)
    return out


class SplitStore:
    """Rows below ``offset`` read back from the engine's own re-ranking copy;
    rows from ``offset`` on (added since) held by picsearch. The engine's copy
    is not duplicated: nbytes and save() cover picsearch's part only."""

    def __init__(self, head: VectorView, tail: Float32Store | Int8Store, offset: int) -> None:
        self.dim = tail.dim
        self.dtype = tail.dtype
        self.head, self.tail, self.offset = head, tail, offset

    def append(self, vectors: np.ndarray) -> None:
        self.tail.append(vectors)

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        if isinstance(positions, slice):
            positions = np.arange(*positions.indices(len(self)))
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((*positions.shape, self.dim), np.float32)
        inside = positions < self.offset
        if inside.any():
            out[inside] = self.head.take(positions[inside])
        if not inside.all():
            out[~inside] = self.tail.take(positions[~inside] - self.offset)
        return out

    def __len__(self) -> int:
        return self.offset + len(self.tail)

    def dot_rows(self, queries: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return np.matmul(self.take(positions), queries[:, :, None])[..., 0]

    @property
    def nbytes(self) -> int:
        return self.tail.nbytes

    def save(self, folder: Path) -> None:
        self.tail.save(folder)
