"""Input validation shared by every backend: one place, one wording."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInput

__all__ = ["check_vectors", "check_ids", "check_k", "normalize_rows"]


def _rows_list(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def check_vectors(vectors: Any, dim: int | None, what: str = "vectors") -> np.ndarray:
    """A C-contiguous float32 (n, dim) array, or InvalidInput saying what is wrong."""
    try:
        arr = np.asarray(vectors)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise InvalidInput(f"{what} must be a 2-D array of numbers: {exc}") from exc
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InvalidInput(f"{what} must hold real numbers, not {arr.dtype}")
    if arr.ndim == 1 and arr.size and dim is not None:
        arr = arr.reshape(1, -1)  # one vector on its own is fine
    if arr.ndim != 2:
        raise InvalidInput(f"{what} must be a 2-D array (n, dim), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidInput(
            f"{what} have dimension {arr.shape[1]}, but this index holds dimension {dim}"
        )
    if arr.shape[1] < 1:
        raise InvalidInput(f"{what} must have at least one dimension")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InvalidInput(f"{what} contain NaN or inf (rows {_rows_list(np.flatnonzero(bad))})")
    return arr


def check_ids(ids: Any, n: int, what: str = "ids") -> np.ndarray:
    """A 1-D int64 array of n distinct non-negative ids."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"{what} must be integers (int64), not {arr.dtype}")
    if arr.ndim != 1 or len(arr) != n:
        raise InvalidInput(f"{what} must be a 1-D array of {n} integers, got shape {arr.shape}")
    if arr.dtype == np.uint64 and len(arr) and arr.max() > np.iinfo(np.int64).max:
        raise InvalidInput(f"{what} must fit in int64")
    arr = arr.astype(np.int64)
    if len(arr) and arr.min() < 0:
        raise InvalidInput(f"{what} must be >= 0 (-1 marks padding in results)")
    uniq, counts = np.unique(arr, return_counts=True)
    if len(uniq) != len(arr):
        raise InvalidInput(f"duplicate {what} in one batch: {_rows_list(uniq[counts > 1])}")
    return arr


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInput(f"k={k!r} must be an integer >= 1")
    return int(k)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (for distance='cosine'); zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
