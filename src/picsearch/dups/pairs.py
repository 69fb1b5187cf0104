"""Pairs of similar photos: every pair compared exactly in a small collection, LSH
candidates confirmed exactly in a large one.

``vectors`` are L2-normalised rows, so a pair's cosine is its dot product. In a
large collection the LSH tables (``picsearch.dups.lsh``) propose blocks of rows
that may be similar; each block is confirmed with one small matrix product, and
each photo keeps only its MAX_NEIGHBOURS most similar pairs, which bounds memory
in crowded collections.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .lsh import LshOptions, candidate_blocks

__all__ = [
    "DEFAULT_THRESHOLD",
    "EXACT_BELOW",
    "check_threshold",
    "exact_pairs",
    "pairs_of_views",
    "similar_pairs",
]

#: Cosine similarity (visual space of the default model) at which two photos are
#: near-duplicates; chosen by the F1 sweep of benchmarks/dups.py (docs/dups.md).
DEFAULT_THRESHOLD = 0.78
#: Below this many photos every pair is compared exactly (it is fast); above, LSH.
EXACT_BELOW = 4096
#: Confirmed pairs kept per photo (its most similar): bounds memory in crowded collections.
MAX_NEIGHBOURS = 32
_BLOCK = 2048
#: Vectors stacked at a time to confirm candidate blocks (bounds a temporary).
_GATHER_ROWS = 8192
_PENDING = 1 << 20


def check_threshold(threshold: float) -> None:
    """Refuse a threshold that is not a cosine similarity in (0, 1]."""
    if not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise InvalidInput(
            f"threshold must be a cosine similarity in (0, 1], not {threshold!r} "
            f"(default {DEFAULT_THRESHOLD})"
        )


def similar_pairs(
    vectors: np.ndarray, *, threshold: float, lsh: LshOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (i < j, sorted) whose cosine is at least ``threshold``, and those cosines.

    ``vectors`` are L2-normalised rows. Exact for fewer than EXACT_BELOW rows
    unless ``lsh`` is given; otherwise the pairs LSH proposes, confirmed exactly.
    """
    check_threshold(threshold)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if lsh is None and len(vectors) < EXACT_BELOW:
        return exact_pairs(vectors, threshold)
    n = len(vectors)
    keys, sims = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    found_keys: list[np.ndarray] = []
    found_sims: list[np.ndarray] = []
    pending = 0
    all_blocks = candidate_blocks(vectors, lsh or LshOptions())
    with _one_blas_thread():
        for blocks in all_blocks:
            for block_keys, block_sims in _confirm_blocks(vectors, blocks, threshold):
                found_keys.append(block_keys)
                found_sims.append(block_sims)
                pending += len(block_keys)
            if pending > _PENDING:  # the same pair comes from many tables: fold repeats
                keys, sims = _unique(n, keys, sims, found_keys, found_sims)
                found_keys, found_sims, pending = [], [], 0
    keys, sims = _unique(n, keys, sims, found_keys, found_sims)
    return np.stack([keys // n, keys % n], axis=1), sims


def exact_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Every row pair (i < j) at least ``threshold`` similar, by blocks of exact products."""
    found_a, found_b, found_s = [], [], []
    for start in range(0, len(vectors), _BLOCK):
        block = vectors[start : start + _BLOCK] @ vectors[start:].T
        a, b = np.nonzero(np.triu(block >= threshold, k=1))
        found_a.append(a + start)
        found_b.append(b + start)
        found_s.append(block[a, b])
    if not found_a:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    pairs = np.stack([np.concatenate(found_a), np.concatenate(found_b)], axis=1).astype(np.int64)
    return pairs, np.concatenate(found_s).astype(np.float32)


def pairs_of_views(
    views: np.ndarray, *, threshold: float, lsh: LshOptions | None
) -> tuple[np.ndarray, np.ndarray]:
    """Photo pairs that match in any views: every view is a row, rows map back to photos.

    ``views`` is (n, views, dim); each pair keeps the cosine of its best-matching views.
    """
    n, count, dim = views.shape
    rows = np.ascontiguousarray(views.transpose(1, 0, 2).reshape(n * count, dim))
    pairs, sims = similar_pairs(rows, threshold=threshold, lsh=lsh)
    a, b = pairs[:, 0] % n, pairs[:, 1] % n
    keep = a != b
    low, high, sims = np.minimum(a, b)[keep], np.maximum(a, b)[keep], sims[keep]
    keys = low * n + high
    order = np.lexsort((-sims, keys))  # per pair, the best view first
    keys, sims = keys[order], sims[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    keys, sims = keys[first], sims[first]
    return np.stack([keys // n, keys % n], axis=1), sims


def _confirm_blocks(
    vectors: np.ndarray, blocks: np.ndarray, threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pair keys (i * n + j, i < j) and cosines of the pairs within blocks above threshold."""
    n, size = len(vectors), blocks.shape[1]
    upper_i, upper_j = np.triu_indices(size, k=1)
    step = max(1, _GATHER_ROWS // size)
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        # One small product per block: numpy's stacked matmul is slower here.
        gram = np.stack([m @ m.T for m in vectors[chunk]])[:, upper_i, upper_j]
        which, pair = np.nonzero(gram >= threshold)
        if len(which):
            a, b = chunk[which, upper_i[pair]], chunk[which, upper_j[pair]]
            yield np.minimum(a, b) * n + np.maximum(a, b), gram[which, pair]


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Tiny matrix products run many times faster on one BLAS thread than on several."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _unique(
    n: int,
    keys: np.ndarray,
    sims: np.ndarray,
    more_keys: list[np.ndarray],
    more_sims: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs, each kept only if among the MAX_NEIGHBOURS best of one of its rows."""
    keys, first = np.unique(np.concatenate([keys, *more_keys]), return_index=True)
    sims = np.concatenate([sims, *more_sims])[first]
    keep = _top_per_row(keys // n, sims) | _top_per_row(keys % n, sims)
    return keys[keep], sims[keep]


def _top_per_row(rows: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """Whether each pair is among the MAX_NEIGHBOURS most similar pairs of its row."""
    order = np.lexsort((-sims, rows))
    sorted_rows = rows[order]
    run_start = np.searchsorted(sorted_rows, sorted_rows, "left")
    keep = np.empty(len(rows), dtype=bool)
    keep[order] = np.arange(len(rows)) - run_start < MAX_NEIGHBOURS
    return keep
