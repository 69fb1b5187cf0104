"""Random-projection LSH: blocks of vectors that may be similar, in linear memory.

Each table hashes every vector to ``bits`` sign bits of random projections
(SimHash); vectors that share a bucket in any table are candidates. Two vectors
at angle θ share one bit with probability 1 - θ/π, so near-duplicates collide
in most tables and unrelated photos rarely. The projections are taken around
the collection's mean: image features are non-negative and all lie in one
narrow cone, where hyperplanes through the origin would leave most buckets
empty and a few huge.

Candidates come out as *blocks*, rows of vector indices whose every pair is a
candidate, so that the caller confirms a whole bucket with one small matrix
product instead of gathering vectors pair by pair.

Bucket caps: a crowded bucket (many similar photos) does not yield all its
pairs. Its members are ordered along one more random projection and cut into
overlapping blocks of ``2 * window`` consecutive members (stride ``window``),
so each member meets at least its ``window`` neighbours in that order and a
table yields at most about ``2 * n * window`` pairs whatever the data: memory
and time grow linearly with the collection, never with its square.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInput

__all__ = ["LshOptions", "candidate_blocks", "candidate_pairs"]

#: Rows projected at a time: bounds the temporary (rows x tables * (bits + 1)) floats.
_CHUNK = 16384


@dataclass(frozen=True)
class LshOptions:
    """How candidates are drawn. The defaults were measured (benchmarks/dups.py)."""

    #: Independent hash tables; more find more of the pairs near the threshold, at more cost.
    tables: int = 32
    #: Sign bits per table; None picks about log2(n / bucket), so buckets hold ~bucket vectors.
    bits: int | None = None
    #: Mean bucket size that ``bits=None`` aims at.
    bucket: int = 64
    #: Bucket cap: a member of a crowded bucket is compared with this many next to it.
    window: int = 64
    #: Seed of the random projections: the same seed gives the same candidates.
    seed: int = 0

    def bits_for(self, n: int) -> int:
        if self.bits is not None:
            return self.bits
        return int(min(max(round(math.log2(max(n, 2) / self.bucket)), 1), 62))

    def check(self) -> None:
        for name in ("tables", "bucket", "window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInput(f"LSH {name} must be a whole number of at least 1, not {value}")
        if self.bits is not None and not (isinstance(self.bits, int) and 1 <= self.bits <= 62):
            raise InvalidInput(f"LSH bits must be a whole number from 1 to 62, not {self.bits}")


def candidate_blocks(
    vectors: np.ndarray, options: LshOptions = LshOptions()
) -> Iterator[np.ndarray]:
    """(blocks, size) int64 arrays of row indices; every pair within a block is a candidate.

    ``vectors`` is an (n, d) float32 array. Each table yields one array per block
    size, so a caller can stack the vectors of a whole array at once. Pairs repeat
    across tables (and, in crowded buckets, across overlapping blocks).
    """
    options.check()
    if len(vectors) < 2:
        return iter(())
    keys, order = _keys_and_order(vectors, options)  # now, not on the first next()
    return (
        blocks
        for table in range(options.tables)
        for blocks in _table_blocks(keys[:, table], order[:, table], options.window)
    )


def candidate_pairs(vectors: np.ndarray, options: LshOptions = LshOptions()) -> np.ndarray:
    """Every distinct candidate pair (i < j) as an (m, 2) int64 array, sorted.

    Convenient for measuring recall; ``candidate_blocks`` is what scales.
    """
    n = len(vectors)
    found = [np.zeros(0, dtype=np.int64)]
    for blocks in candidate_blocks(vectors, options):
        i, j = np.triu_indices(blocks.shape[1], k=1)
        a, b = blocks[:, i].ravel(), blocks[:, j].ravel()
        found.append(np.minimum(a, b) * n + np.maximum(a, b))
    keys = np.unique(np.concatenate(found))
    return np.stack([keys // max(n, 1), keys % max(n, 1)], axis=1)


def _keys_and_order(vectors: np.ndarray, options: LshOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per table, each vector's bucket key and its position along an ordering projection."""
    n, dim = vectors.shape
    bits, tables = options.bits_for(n), options.tables
    rng = np.random.default_rng(options.seed)
    planes = rng.standard_normal((dim, tables * (bits + 1))).astype(np.float32)
    offset = vectors.mean(axis=0, dtype=np.float64).astype(np.float32) @ planes
    weights = np.int64(1) << np.arange(bits, dtype=np.int64)
    keys = np.empty((n, tables), dtype=np.int64)
    order = np.empty((n, tables), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        projected = vectors[start : start + _CHUNK] @ planes - offset
        projected = projected.reshape(len(projected), tables, bits + 1)
        keys[start : start + _CHUNK] = (projected[:, :, :bits] > 0).astype(np.int64) @ weights
        order[start : start + _CHUNK] = projected[:, :, bits]
    return keys, order


def _table_blocks(keys: np.ndarray, order: np.ndarray, window: int) -> Iterator[np.ndarray]:
    """The blocks of one table, one array per block size (2 .. 2 * window)."""
    rows = np.lexsort((order, keys))
    sorted_keys = keys[rows]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    block_starts, block_sizes = _cut(starts, sizes, window)
    for size in np.unique(block_sizes):
        if size < 2:
            continue
        first = block_starts[block_sizes == size]
        yield rows[first[:, None] + np.arange(size)]


def _cut(starts: np.ndarray, sizes: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Buckets up to 2 * window stay whole; larger ones become blocks of 2 * window
    members every ``window`` members (the last block ends with the bucket)."""
    cap = 2 * window
    small = sizes <= cap
    out_starts, out_sizes = [starts[small]], [sizes[small]]
    for start, size in zip(starts[~small].tolist(), sizes[~small].tolist(), strict=True):
        offsets = np.arange(0, size - cap + window, window)
        offsets[-1] = min(offsets[-1], size - cap)
        out_starts.append(start + offsets)
        out_sizes.append(np.full(len(offsets), cap))
    return np.concatenate(out_starts), np.concatenate(out_sizes)
