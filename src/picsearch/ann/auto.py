"""backend="auto": choose a backend and its parameters by measuring.

Small collections get exact search (it is fast enough and perfect). Larger
ones get a tree + 4-bit code index: every installed engine (ScaNN with AH,
FAISS IVF fast-scan) is built and its search-time parameters tuned on the
collection itself: 500 of its vectors are used as leave-one-out queries,
exact search gives the truth, and per engine the fastest (leaves_to_search,
reorder) pair whose recall@10 meets the target wins. The engines' winners are
re-timed side by side and the faster one meeting the target is kept. The
choice, the measured recall and every candidate are kept in
``info()["auto"]``.
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

__all__ = ["build_auto", "candidate_engines", "choose_engine", "default_exact_below"]

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
_BISECT = 2  # halvings of the gap between the last missing and the first meeting step
_DUEL_ROUNDS = 5  # interleaved re-timings of each engine's tuned configuration
_PLATEAU = 0.001  # recall gained by more leaves below this: the re-rank depth is the limit


def default_exact_below(dim: int) -> int:
    return max(1000, int(EXACT_BELOW_AT_256 * 256 / max(dim, 1)))


def choose_engine() -> str | None:
    """ScaNN (anisotropic AH is what the design asks for), else FAISS, else None."""
    engines = candidate_engines()
    return engines[0] if engines else None


def candidate_engines() -> list[str]:
    """The installed engines auto builds and times against each other."""
    return [name for name in ("scann", "faiss") if importlib.util.find_spec(name) is not None]


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
    engines = candidate_engines() if n >= threshold else []
    if not engines:
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
    queries, truth, self_ids = _tuning_set(vectors, ids, options.seed)
    target = options.recall_target
    results: dict[str, tuple[AnnIndex, dict[str, Any]]] = {}
    for engine in engines:
        start = time.perf_counter()
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
        built = time.perf_counter() - start
        (leaves_to_search, reorder, recall, ms), table = tune(
            index, queries, truth, self_ids, target
        )
        index.options = index.options.replace(tree=Tree(leaves, leaves_to_search), reorder=reorder)
        results[engine] = (
            index,
            {
                "leaves_to_search": leaves_to_search,
                "reorder": reorder,
                "recall@10": recall,
                "ms_per_query": ms,
                "target_met": recall >= target,
                "build_seconds": round(built, 3),
                "tune_seconds": round(time.perf_counter() - start - built, 3),
                "tuning": table,
            },
        )
    # the fastest engine meeting the target; if none does, the most accurate
    met = [e for e in engines if results[e][1]["target_met"]]
    if len(met) > 1:
        _duel({e: results[e][0] for e in met}, queries, {e: results[e][1] for e in met})
    if met:
        engine = min(met, key=lambda e: results[e][1]["ms_per_query"])
        why = "fastest measured engine meeting the recall target"
    else:
        engine = max(engines, key=lambda e: results[e][1]["recall@10"])
        why = "no engine met the recall target: the most accurate"
    index, chosen = results[engine]
    others = ", ".join(
        f"{e} {results[e][1]['ms_per_query']} ms/query at recall {results[e][1]['recall@10']}"
        for e in engines
    )
    index.options = index.options.replace(
        tuned={
            "requested": request,
            "chose": engine,
            "reason": f"n={n} >= exact_below={threshold}; {why} ({others})",
            **chosen,
            "candidates": {e: results[e][1] for e in engines},
        },
    )
    index._recall = {"k": K, "recall": chosen["recall@10"], "queries": len(queries)}
    if not chosen["target_met"]:
        log.warning(
            "auto: best recall@10 %.3f is below the target %.2f", chosen["recall@10"], target
        )
    return index


def _tuning_set(
    vectors: np.ndarray, ids: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-out queries drawn from the collection and their exact top K+1."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(vectors), size=min(TUNE_QUERIES, len(vectors)), replace=False))
    queries = vectors[sample]
    _, truth = scan_topk(queries, Float32Store(vectors.shape[1], vectors), K + 1)
    return queries, ids[truth], ids[sample]


def tune(
    index: AnnIndex,
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
    target: float,
) -> tuple[tuple[int, int, float, float], list[list[float]]]:
    """Try (leaves_to_search, reorder) pairs; return the fastest meeting the target
    (or the most accurate) and the table of everything tried.

    At the shallowest re-ranking depth, leaves grow along coarse steps until the
    target is met; each deeper depth can only need fewer leaves, so it walks down
    from there. Either way the gap between the last missing and the first
    meeting step is then bisected (a step too far costs time on every query).
    Deepening stops once it no longer saves leaves or costs clearly more."""
    leaves = index.options.tree.num_leaves
    steps = sorted({max(1, round(leaves * f)) for f in _FRACTIONS})
    table: list[list[float]] = []
    feasible: list[tuple[int, int, float, float]] = []

    def measure(leaves_to_search: int, reorder: int) -> tuple[int, int, float, float]:
        index.options = index.options.replace(tree=Tree(leaves, leaves_to_search), reorder=reorder)
        recall, ms = _measure(index, queries, truth, self_ids)
        row = (leaves_to_search, reorder, round(recall, 4), round(ms, 4))
        table.append(list(row))
        return row

    def meets(row: tuple[int, int, float, float]) -> bool:
        return row[2] >= target + _MARGIN

    needed: int | None = None  # leaves the previous feasible depth needed
    for reorder in _REORDERS:
        low, high, best = 0, leaves + 1, None
        if needed is None:
            last = -1.0
            for leaves_to_search in steps:
                row = measure(leaves_to_search, reorder)
                if meets(row):
                    high, best = leaves_to_search, row
                    break
                low = leaves_to_search
                if row[2] <= last + _PLATEAU:
                    break  # recall stopped growing with leaves: try a deeper re-rank
                last = row[2]
            if best is None:
                continue
        else:
            high = needed
            for leaves_to_search in reversed([s for s in steps if s < needed]):
                row = measure(leaves_to_search, reorder)
                if not meets(row):
                    low = leaves_to_search
                    break
                high, best = leaves_to_search, row
        for _ in range(_BISECT):
            mid = (low + high) // 2
            if mid <= low:
                break
            row = measure(mid, reorder)
            if meets(row):
                high, best = mid, row
            else:
                low = mid
        if best is None:
            break  # a deeper re-rank saves no leaves: it can only be slower
        feasible.append(best)
        needed = high
        if best[3] > 1.5 * min(f[3] for f in feasible):
            break  # deeper re-ranking now costs more than the leaves it saves
    # any measured pair meeting the target counts (timings are noisy: a pair with
    # more leaves may have measured faster than the minimal one)
    good = [tuple(row) for row in table if row[2] >= target + _MARGIN]
    if good:
        best = min(good, key=lambda row: row[3])
        return (int(best[0]), int(best[1]), best[2], best[3]), table
    top = max(table, key=lambda row: row[2])
    return (int(top[0]), int(top[1]), top[2], top[3]), table


def _duel(
    indexes: dict[str, AnnIndex], queries: np.ndarray, records: dict[str, dict[str, Any]]
) -> None:
    """Re-time each engine's tuned configuration, interleaved on the same queries,
    so that load on a shared machine hits them alike; the best time of the rounds
    replaces ms_per_query (the tuning-time one stays in the tuning table)."""
    best = dict.fromkeys(indexes, math.inf)
    for _ in range(_DUEL_ROUNDS):
        for engine, index in indexes.items():
            start = time.perf_counter()
            index.search(queries, K + 1)
            best[engine] = min(best[engine], time.perf_counter() - start)
    for engine, seconds in best.items():
        records[engine]["ms_per_query"] = round(1000 * seconds / len(queries), 4)


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
