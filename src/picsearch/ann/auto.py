"""backend="auto": choose a backend and its parameters by measuring.

Small collections get exact search (it is fast enough and perfect). Larger
ones get a tree + AH index (ScaNN if installed, else FAISS), whose search-time
parameters are tuned on the collection itself: 500 of its vectors are used as
leave-one-out queries, exact search gives the truth, and the fastest
(leaves_to_search, reorder) pair whose recall@10 meets the target wins. The
choice and the measured recall are kept in ``info()["auto"]``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from typing import Any

import numpy as np

from .base import AnnIndex
from .checks import check_ids, check_vectors, normalize_rows
from .options import AH, IndexOptions, Tree, default_num_leaves
from .search import leave_one_out
from .store import Float32Store, scan_topk

__all__ = ["build_auto", "choose_engine", "default_exact_below"]

log = logging.getLogger(__name__)

# Measured (benchmarks/ann.py, docs/ann.md): below this many vectors at
# dim=256, numpy brute force answers a query about as fast as a tuned index
# at recall 0.95 on these 2-core machines; the cut scales with 1/dim.
EXACT_BELOW_AT_256 = 20_000
TUNE_QUERIES = 500
K = 10
_FRACTIONS = (0.005, 0.01, 0.015, 0.02, 0.03, 0.045, 0.065, 0.1, 0.15, 0.22, 0.33, 0.5, 0.75, 1.0)
_REORDERS = (20, 40, 80, 160, 320, 640)
_MARGIN = 0.005  # 500 queries estimate recall to about +-0.006; aim a little high


def default_exact_below(dim: int) -> int:
    return max(1000, int(EXACT_BELOW_AT_256 * 256 / max(dim, 1)))


def choose_engine() -> str | None:
    """ScaNN (anisotropic AH is what the design asks for), else FAISS, else None."""
    for name in ("scann", "faiss"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def build_auto(vectors: Any, ids: Any, options: IndexOptions) -> AnnIndex:
    from . import backend_class

    vectors = check_vectors(vectors, None)
    n, dim = vectors.shape
    ids = check_ids(np.arange(n, dtype=np.int64) if ids is None else ids, n)
    if options.distance == "cosine":
        vectors = normalize_rows(vectors)
    request = options.replace(tuned={}).to_dict()
    common = {
        "distance": options.distance,
        "recall_target": options.recall_target,
        "rebuild_threshold": options.rebuild_threshold,
        "seed": options.seed,
    }
    threshold = options.exact_below if options.exact_below is not None else default_exact_below(dim)
    engine = choose_engine() if n >= threshold else None
    if engine is None:
        reason = (
            f"n={n} < exact_below={threshold}"
            if n < threshold
            else "no ANN engine installed (pip install 'picsearch[ann]')"
        )
        if n >= threshold:
            log.warning("auto: %s; using exact search", reason)
        tuned = {"requested": request, "chose": "exact", "reason": reason}
        index = backend_class("exact").build(
            vectors, ids, IndexOptions(backend="exact", tuned=tuned, **common)
        )
        index._recall = {"k": K, "recall": 1.0, "queries": 0}
        return index

    leaves = default_num_leaves(n)
    dims_per_block = 2 if engine == "scann" or dim % 2 == 0 else 1
    opts = IndexOptions(
        backend=engine,
        tree=Tree(leaves, max(1, math.ceil(leaves * 0.05))),
        quantization=AH(dims_per_block, 0.2),
        reorder=100,
        reorder_dtype="int8",
        **common,
    )
    index = backend_class(engine).build(vectors, ids, opts)
    best, table = tune(index, vectors, ids, options.recall_target, options.seed)
    leaves_to_search, reorder, recall, ms = best
    index.options = index.options.replace(
        tree=Tree(leaves, leaves_to_search),
        reorder=reorder,
        tuned={
            "requested": request,
            "chose": engine,
            "reason": f"n={n} >= exact_below={threshold}",
            "leaves_to_search": leaves_to_search,
            "reorder": reorder,
            "recall@10": recall,
            "ms_per_query": ms,
            "target_met": recall >= options.recall_target,
            "tuning": table,
        },
    )
    index._recall = {"k": K, "recall": recall, "queries": min(TUNE_QUERIES, n)}
    if recall < options.recall_target:
        log.warning(
            "auto: best recall@10 %.3f is below the target %.2f", recall, options.recall_target
        )
    return index


def tune(
    index: AnnIndex, vectors: np.ndarray, ids: np.ndarray, target: float, seed: int = 0
) -> tuple[tuple[int, int, float, float], list[list[float]]]:
    """Try (leaves_to_search, reorder) pairs; return the fastest meeting the target
    (or the most accurate) and the table of everything tried."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(vectors), size=min(TUNE_QUERIES, len(vectors)), replace=False))
    queries, self_ids = vectors[sample], ids[sample]
    _, truth = scan_topk(queries, Float32Store(vectors.shape[1], vectors), K + 1)
    truth = ids[truth]
    leaves = index.options.tree.num_leaves
    steps = sorted({max(1, round(leaves * f)) for f in _FRACTIONS})
    table: list[list[float]] = []
    feasible: list[tuple[int, int, float, float]] = []
    for reorder in _REORDERS:
        for leaves_to_search in steps:
            index.options = index.options.replace(
                tree=Tree(leaves, leaves_to_search), reorder=reorder
            )
            recall, ms = _measure(index, queries, truth, self_ids)
            table.append([leaves_to_search, reorder, round(recall, 4), round(ms, 4)])
            if recall >= target + _MARGIN:
                feasible.append((leaves_to_search, reorder, round(recall, 4), round(ms, 4)))
                break  # more leaves only cost time
            if feasible and ms > 2 * min(f[3] for f in feasible):
                break  # already slower than a config that works
    if feasible:
        return min(feasible, key=lambda f: f[3]), table
    top = max(table, key=lambda row: row[2])
    return (int(top[0]), int(top[1]), top[2], top[3]), table


def _measure(
    index: AnnIndex, queries: np.ndarray, truth: np.ndarray, self_ids: np.ndarray
) -> tuple[float, float]:
    """Leave-one-out recall@10 and the best-of-3 milliseconds per query."""
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        _, got = index.search(queries, K + 1)
        best = min(best, time.perf_counter() - start)
    return leave_one_out(truth, got, self_ids, K), 1000 * best / len(queries)
