"""The search path every backend shares: filters, over-fetch, re-rank, fallback.

The common case (no filter, no tombstone, everything in an engine that
re-ranks natively) takes a lean path: one engine call and an id lookup, no
re-validation beyond a dtype/shape/finiteness check, so a batch of one costs
what the engine costs. Anything else takes the general path below.

Why the fallback: an approximate engine may return fewer than k usable
candidates (a small subset, many tombstones, sparse leaves). Rows left short
are re-run exactly over the allowed vectors, so a search returns exactly k
results whenever k exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..errors import InvalidInput
from .checks import check_k, check_vectors, normalize_rows
from .engine import Engine, LeanSearch
from .store import merge_topk, scan_topk, score_candidates, topk

__all__ = ["LeanPath", "SearchMixin", "lean_path", "recall_at_k", "leave_one_out"]


class SearchMixin:
    #: subsets up to this size are scored exactly, never through the engine
    exact_subset_max: ClassVar[int] = 20_000

    # provided by AnnIndex
    dim: int
    options: Any
    _engine: Engine
    _ids: Any
    _alive: Any
    _store: Any
    _engine_n: int
    _n_alive: int
    _recall: dict[str, Any] | None
    _lean: LeanPath | None
    prepare_vectors: Callable[[np.ndarray], np.ndarray]
    positions_of: Callable[[np.ndarray], np.ndarray]

    def search(self, queries: Any, k: int, *, subset: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query, best first; float32 (nq, k) and int64 (nq, k).

        ``subset``: only these ids may be returned (a filter); ids not in the
        index are ignored."""
        if subset is None and self._lean is not None:
            found = self._lean(queries, k)
            if found is not None:
                return found
        q = self.prepare_vectors(check_vectors(queries, self.dim, what="queries"))
        k = check_k(k)
        mask, count = self._allowed(subset)
        if not len(q) or count == 0:
            return _empty(len(q), k)
        if mask is not None and count <= self.exact_subset_max:  # a subset always has a mask
            scores, pos = scan_topk(q, self._store, k, positions=np.flatnonzero(mask))
        elif self._engine_n == 0:
            scores, pos = self._scan(q, k, mask, count)
        else:
            scores, pos = self._search_positions(q, k, mask, count, subset is not None)
        ids = np.where(pos >= 0, self._ids.view[pos.clip(0)], -1)
        return scores, ids

    def _allowed(self, subset: Any) -> tuple[np.ndarray | None, int]:
        """Mask of positions that may be returned (None: all) and how many."""
        n = len(self._ids)
        if subset is None:
            return (None if self._n_alive == n else self._alive.view), self._n_alive
        if isinstance(subset, set | frozenset):
            subset = np.fromiter(subset, dtype=np.int64, count=len(subset))
        arr = np.asarray(subset).reshape(-1)
        if arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer)):
            raise InvalidInput(f"subset must hold integer ids, not {arr.dtype}")
        pos = self.positions_of(arr.astype(np.int64))
        mask = np.zeros(n, dtype=bool)
        mask[pos[pos >= 0]] = True
        return mask, int(mask.sum())

    def _search_positions(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, count: int, subset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._ids)
        frac = count / n
        rerank = self._engine.rerank_count()
        want = max(k, rerank)
        if mask is not None and not self._engine.filters_natively():
            # the engine will return filtered-out candidates too: ask for more
            want = int(np.ceil(want / max(frac, 0.02)))
        scores, pos = self._engine.search(q, min(want, self._engine_n), mask, frac)
        pos = pos.astype(np.int64)
        bad = pos < 0
        if mask is not None:
            bad |= ~mask[pos.clip(0)]
        pos[bad] = -1
        scores = score_candidates(q, self._store, pos) if rerank else np.where(bad, -np.inf, scores)
        parts = [topk(scores.astype(np.float32), pos, k)]
        buffer = np.arange(self._engine_n, n)
        if mask is not None:
            buffer = buffer[mask[buffer]]
        if len(buffer):  # vectors the engine does not hold yet: scored exactly
            parts.append(scan_topk(q, self._store, k, positions=buffer))
        scores, pos = merge_topk(parts, k)
        short = (pos >= 0).sum(axis=1) < min(k, count)
        if short.any():
            scores[short], pos[short] = self._scan(q[short], k, mask, count)
        return scores, pos

    def _scan(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the allowed positions."""
        if mask is not None and count < len(mask) // 4:
            return scan_topk(q, self._store, k, positions=np.flatnonzero(mask))
        return scan_topk(q, self._store, k, mask=mask)

    def measure_recall(self, k: int = 10, sample: int = 200, seed: int = 0) -> dict[str, Any]:
        """Recall@k on a leave-one-out sample of the index's own vectors, against
        exact search over the stored copy. Recorded in info()["recall"]."""
        alive = np.flatnonzero(self._alive.view)
        rng = np.random.default_rng(seed)
        pos = rng.choice(alive, size=min(sample, len(alive)), replace=False)
        queries = self._store.take(np.sort(pos))
        self_ids = self._ids.view[np.sort(pos)]
        mask = None if self._n_alive == len(self._ids) else self._alive.view
        _, truth = scan_topk(queries, self._store, k + 1, mask=mask)
        _, got = self.search(queries, k + 1)
        truth_ids = np.where(truth >= 0, self._ids.view[truth.clip(0)], -1)
        recall = leave_one_out(truth_ids, got, self_ids, k)
        self._recall = {"k": k, "recall": round(recall, 4), "queries": len(pos)}
        return self._recall


LeanPath = Callable[[Any, Any], "tuple[np.ndarray, np.ndarray] | None"]
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def lean_path(search: LeanSearch, ids: np.ndarray, dim: int, cosine: bool, held: int) -> LeanPath:
    """The common search pre-bound: no filter, no tombstone, every row in an
    engine whose scores are final. It takes a float32 C-contiguous (nq, dim)
    array and an integer k as they are (no copy, no validation pass), makes
    one engine call and one id lookup, and answers None (the general path,
    which also words any error) for anything else, for a short row, and for
    a query holding NaN or inf, which finds nothing finite."""
    ndarray, float32, integer = np.ndarray, np.float32, np.integer

    def lean(queries: Any, k: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if (
            type(queries) is not ndarray
            or queries.dtype != float32
            or queries.ndim != 2
            or queries.shape[1] != dim
            or not queries.flags.c_contiguous
            or not len(queries)
        ):
            return None
        if type(k) is not int:
            if isinstance(k, bool) or not isinstance(k, integer):
                return None
            k = int(k)
        if not 0 < k <= held:
            return None
        norms = None
        if cosine:
            queries, norms = _unit_or_norms(queries)
        scores, positions = search(queries, k)
        if len(scores) == 1:
            if not abs(scores.item(-1)) < _FLOAT32_MAX:  # NaN fails too
                return None
        elif not np.abs(scores[:, -1]).max() < _FLOAT32_MAX:
            return None
        if norms is not None:
            scores /= norms
        return scores, ids[positions]

    return lean


def _unit_or_norms(queries: np.ndarray) -> tuple[np.ndarray, Any]:
    """For cosine: the queries as they are and their norms, by which the scores
    are divided afterwards (an inner-product engine ranks q and q/|q| alike, and
    no normalised copy of the batch is made), or a normalised copy (and None)
    when a norm is too small, too large or not finite for that."""
    if len(queries) == 1:  # a scalar: a batch of one pays no array overhead
        squared: Any = float(np.vdot(queries, queries))
        low = high = squared
    else:
        squared = np.einsum("ij,ij->i", queries, queries)[:, None]
        low, high = squared.min(), squared.max()
    if not (_SQUARED_NORM_LOW < low and high < _SQUARED_NORM_HIGH):  # NaN fails too
        return normalize_rows(queries), None
    return queries, np.sqrt(squared)


# Norms from 0.01 to 10,000: ScaNN's AH scoring stops ranking a query like its unit
# self below about 0.001 (its look-up tables lose the small values)
_SQUARED_NORM_LOW, _SQUARED_NORM_HIGH = 1e-4, 1e8


def _empty(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)


def leave_one_out(truth: np.ndarray, got: np.ndarray, self_ids: np.ndarray, k: int) -> float:
    """Recall@k when each query is a vector of the collection: its own id is
    dropped from both lists first (it would be a free hit)."""

    def strip(rows: np.ndarray) -> list[np.ndarray]:
        return [r[(r != s) & (r >= 0)][:k] for r, s in zip(rows, self_ids, strict=True)]

    return recall_at_k(strip(truth), strip(got))


def recall_at_k(truth: Any, got: Any) -> float:
    """Mean |truth ∩ got| / |truth| over rows (rows may be lists of unequal length)."""
    hits = total = 0
    for t, g in zip(truth, got, strict=True):
        t = np.asarray(t)
        t = t[t >= 0]
        hits += len(np.intersect1d(t, np.asarray(g)))
        total += len(t)
    return hits / total if total else 1.0
