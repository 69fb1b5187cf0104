"""How much recall a shape's leaves allow, before any codes are made.

Searching p leaves finds at best the true neighbours that sit in those p
leaves, whatever the codes. So once a FAISS shape's leaves are trained (the
k-means every code kind shares, trained_leaves), the share of each held-out
query's true top 10 inside its best leaves bounds the recall of every
setting of that shape. When even 10 % of the leaves hold less than the
target on average, no setting of the shape can meet it within the frontier's
reach, and ``auto`` does not build its codes (clustered 300k x 128: 548
leaves hold 0.94 of the neighbours in their best 55, so neither the 4-bit
nor the SQ8 shape with 548 leaves is built).
"""

from __future__ import annotations

import numpy as np

from .recall import Queries

__all__ = ["leaf_recall", "truth_positions"]


def truth_positions(queries: Queries, ids: np.ndarray) -> np.ndarray:
    """Positions (into the rows ``ids`` names) of each query's true neighbours, -1 padded."""
    sorter = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids, queries.truth, sorter=sorter).clip(0, len(ids) - 1)
    found = sorter[at]
    return np.where((queries.truth >= 0) & (ids[found] == queries.truth), found, -1)


def leaf_recall(
    centroids: np.ndarray,
    queries: np.ndarray,
    neighbours: np.ndarray,
    truth: np.ndarray,
    most: int,
) -> np.ndarray:
    """For p = 1..most, the mean share of each query's true neighbours
    (``truth``: positions into ``neighbours``' rows, -1 padded) lying in the
    query's p best leaves: an upper bound on the recall of any search of p leaves."""
    import faiss  # only FAISS shapes are judged by their leaves

    leaves = faiss.IndexFlatIP(centroids.shape[1])
    leaves.add(np.ascontiguousarray(centroids, np.float32))
    _, best = leaves.search(np.ascontiguousarray(queries, np.float32), most)
    valid = truth >= 0
    rows = np.ascontiguousarray(neighbours[truth.clip(0).ravel()], np.float32)
    _, home = leaves.search(rows, 1)
    home = home.reshape(truth.shape)
    # the rank of each neighbour's leaf among the query's best (most: not among them)
    match = home[:, :, None] == best[:, None, :]
    rank = np.where(match.any(axis=2), match.argmax(axis=2), most)
    rank = np.where(valid, rank, most)
    counts = np.maximum(valid.sum(axis=1), 1)[:, None]
    within = (rank[:, :, None] < np.arange(1, most + 1)[None, None, :]).sum(axis=1) / counts
    within[valid.sum(axis=1) == 0] = 1.0
    return within.mean(axis=0)
