"""Recall measured on tuning queries: their exact answers and a confidence bound.

Shared by ``auto``'s tuning and by the Spark build's (leave-one-out queries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import AnnIndex

__all__ = ["CONFIDENCE_Z", "K", "Queries", "hits_per_query", "recall_bound"]

K = 10
# A setting meets the target when mean recall - Z standard errors does: about
# 98 % one-sided confidence that the recall on unseen queries is as high.
CONFIDENCE_Z = 2.0


def recall_bound(per_query: np.ndarray) -> float:
    """Mean recall less CONFIDENCE_Z standard errors (the target must hold there)."""
    if len(per_query) < 2:
        return float(per_query.mean()) if len(per_query) else 1.0
    spread = float(per_query.std(ddof=1)) / math.sqrt(len(per_query))
    return float(per_query.mean()) - CONFIDENCE_Z * spread


@dataclass
class Queries:
    """Tuning queries and their exact answers (ids). Held out of the index
    (``self_ids`` None, truth is the top K), or leave-one-out vectors of the
    collection (truth is the top K+1, the query's own id among them)."""

    vectors: np.ndarray
    truth: np.ndarray
    self_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    def head(self, m: int) -> Queries:
        ids = None if self.self_ids is None else self.self_ids[:m]
        return Queries(self.vectors[:m], self.truth[:m], ids)

    def per_query(self, index: AnnIndex) -> np.ndarray:
        """Recall@K of each query as ``index`` answers it now."""
        if self.self_ids is None:
            return hits_per_query(self.truth, index.search(self.vectors, K)[1])
        _, got = index.search(self.vectors, K + 1)
        return hits_per_query(_strip(self.truth, self.self_ids), _strip(got, self.self_ids))


def _strip(rows: np.ndarray, self_ids: np.ndarray) -> np.ndarray:
    """Each row without the query's own id, cut to K (-1 padded)."""
    keep = rows != self_ids[:, None]
    rank = np.cumsum(keep, axis=1)
    out = np.full((len(rows), K), -1, np.int64)
    r, c = np.nonzero(keep & (rank <= K))
    out[r, rank[r, c] - 1] = rows[r, c]
    return out


def hits_per_query(truth: np.ndarray, got: np.ndarray) -> np.ndarray:
    """|truth ∩ got| / |truth| per row (-1 marks padding in either)."""
    valid = truth >= 0
    hit = (got[:, :, None] == truth[:, None, :]) & valid[:, None, :] & (got[:, :, None] >= 0)
    found = hit.any(axis=1).sum(axis=1)
    total = valid.sum(axis=1)
    return np.where(total > 0, found / np.maximum(total, 1), 1.0)
