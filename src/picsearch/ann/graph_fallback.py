"""When no tree reaches the target within 10 % of its leaves: an HNSW graph.

Some collections have no cluster structure a tree of leaves can use: on the
clustered recipe at 50 000 x 128 (2 000 centres, 25 points each) a query's
neighbours spread over many leaves (448 leaves hold 0.946 of them in a
query's best 45), so every tree setting meeting the target scans a quarter
of the collection or more. A graph walks to the neighbours instead. Its
``efSearch`` is tuned like the trees' leaves, by recall alone: the first of a
ladder whose lower confidence bound meets the target, so the choice is
deterministic for a seed. The graph keeps float32 vectors (about 1.5x their
bytes with the links at 128 dimensions): it is the fallback for data the
trees cannot serve, not a shape the trees compete with.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import AnnIndex
from .candidates import common_options
from .options import IndexOptions
from .recall import Queries, recall_bound

__all__ = ["EF_LADDER", "GraphChoice", "tune_graph"]

EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
HNSW_M, EF_CONSTRUCTION = 32, 40  # FAISS's own efConstruction: a faster graph to build and walk


@dataclass
class GraphChoice:
    """A tuned graph: the first efSearch of the ladder whose recall bound meets the target."""

    index: AnnIndex
    ef_search: int
    recall: float
    bound: float
    build_seconds: float
    tried: list[list[float]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "engine": "faiss",
            "kind": "hnsw",
            "hnsw_m": HNSW_M,
            "ef_search": self.ef_search,
            "recall@10": round(self.recall, 4),
            "recall_bound": round(self.bound, 4),
            "graph_build_seconds": round(self.build_seconds, 3),
            "graph_tuning": self.tried,
        }


def tune_graph(
    vectors: np.ndarray, ids: np.ndarray, queries: Queries, options: IndexOptions
) -> GraphChoice | None:
    """Build an HNSW graph over the rows and find the least efSearch meeting the
    target; None when FAISS is missing or no efSearch of the ladder meets it."""
    if importlib.util.find_spec("faiss") is None:
        return None
    start = time.perf_counter()
    graph_options = IndexOptions(
        backend="faiss",
        kind="hnsw",
        hnsw_m=HNSW_M,
        ef_construction=EF_CONSTRUCTION,
        **{**common_options(options), "distance": "dot"},  # vectors are normalised already
    )
    index = AnnIndex.build(vectors, ids, graph_options)
    seconds = time.perf_counter() - start
    tried: list[list[float]] = []
    for ef in EF_LADDER:
        index.options = index.options.replace(ef_search=ef)
        per_query = queries.per_query(index)
        bound = recall_bound(per_query)
        tried.append([ef, round(float(per_query.mean()), 4), round(bound, 4)])
        if bound >= options.recall_target:
            return GraphChoice(index, ef, float(per_query.mean()), bound, seconds, tried)
    return None
