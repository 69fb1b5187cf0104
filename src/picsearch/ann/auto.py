"""backend="auto": choose an engine and its parameters by measuring recall.

Small collections get exact search (fast enough and perfect). Larger ones
get a tree + 4-bit code index with a native int8 re-rank. Every installed
engine is built in a few shapes (ScaNN with sqrt(N) and 2 sqrt(N) leaves,
FAISS IVF fast-scan + SQ8 refine likewise) and tuned on the collection
itself: 500 of its vectors are leave-one-out queries, exact search gives the
truth, and for each re-rank depth in a fine ladder the fewest leaves
reaching the recall target are found by bisection, from 0.1 % of the leaves
up to 10 % (more only when nothing reaches the target there). That gives a
frontier of settings that all meet the target; recall decides it, so it is
the same for a given seed whatever the machine's load.

From the frontier, ``tune_by="time"`` (default) keeps the fastest as timed
on the tuning queries, interleaved round by round, counting a batch of 500
and single queries alike (the CLI and the server ask one query at a time);
settings within 3 % of the best are a tie, broken by the cost model, then by
a fixed order. ``tune_by="cost"`` keeps the least counted work (the cost
model below) and never looks at a clock: deterministic for a seed.
``info()["auto"]`` records the choice, the reason, and every setting tried.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import AnnIndex
from .checks import check_ids, check_vectors, normalize_rows
from .options import AH, IndexOptions, Tree, default_num_leaves
from .search import leave_one_out
from .store import Float32Store, scan_topk

__all__ = [
    "build_auto",
    "candidate_engines",
    "choose_engine",
    "default_exact_below",
    "fastest",
    "predicted_cost",
    "tune",
]

log = logging.getLogger(__name__)

# Measured (benchmarks/ann.py, docs/ann.md): below this many vectors at
# dim=256, numpy brute force answers a query about as fast as a tuned index
# at recall 0.95 on these 2-core machines; the cut scales with 1/dim.
EXACT_BELOW_AT_256 = 20_000
TUNE_QUERIES = 500
SINGLE_QUERIES = 100  # of the tuning queries, also timed one call each
K = 10
REORDERS = (20, 30, 40, 60, 80, 120, 160, 240, 320)
MIN_FRACTION, MAX_FRACTION = 0.001, 0.10  # of the leaves searched
LEAF_FACTORS = (1, 2)  # num_leaves = factor x sqrt(N)
_MARGIN = 0.005  # 500 queries estimate recall to about +-0.006; aim a little high
_ROUNDS = 3  # interleaved timing rounds, best of
_TIE = 0.03  # timings this close are noise: the cost model decides

# Cost model, microseconds per query (fitted on this project's 2-core machines
# with benchmarks/ann.py's tuning tables, see docs/ann.md): a fixed part per
# call, scoring the leaf centroids (per leaf x dim), scanning 4-bit codes (per
# vector x code), and the native re-rank (per candidate x dim).
COST = {
    "scann": {"call": 4.0, "centroid": 0.00025, "code": 0.00012, "rerank": 0.0006},
    "faiss": {"call": 6.0, "centroid": 0.00025, "code": 0.00010, "rerank": 0.0009},
}


def default_exact_below(dim: int) -> int:
    return max(1000, int(EXACT_BELOW_AT_256 * 256 / max(dim, 1)))


def choose_engine() -> str | None:
    """ScaNN (anisotropic AH is what the design asks for), else FAISS, else None."""
    engines = candidate_engines()
    return engines[0] if engines else None


def candidate_engines() -> list[str]:
    """The installed engines auto builds and compares."""
    return [name for name in ("scann", "faiss") if importlib.util.find_spec(name) is not None]


def predicted_cost(index: AnnIndex, leaves_to_search: int, reorder: int) -> float:
    """Counted work of one query in microseconds (the cost model above)."""
    options, n = index.options, max(len(index), 1)
    c = COST.get(index.backend, COST["faiss"])
    leaves = options.tree.num_leaves if options.tree else 1
    q = options.quantization
    per_block = q.dims_per_block if isinstance(q, AH) else 1
    scanned = leaves_to_search * n / leaves
    return (
        c["call"]
        + c["centroid"] * leaves * index.dim
        + c["code"] * scanned * index.dim / per_block
        + c["rerank"] * reorder * index.dim
    )


@dataclass
class Setting:
    """One engine shape at one (leaves_to_search, reorder) meeting the target."""

    index: AnnIndex
    leaves_to_search: int
    reorder: int
    recall: float
    cost: float
    us_batch: float | None = None
    us_single: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> str:
        return f"{self.index.backend}/{self.index.options.tree.num_leaves}"

    @property
    def us(self) -> float:
        """What tune_by="time" minimises: a batched query plus a single one."""
        return (self.us_batch or 0.0) + (self.us_single or 0.0)

    def order(self) -> tuple[Any, ...]:
        """The fixed tie-break: least cost, then engine, leaves, depth."""
        tree = self.index.options.tree
        return (self.cost, self.index.backend, tree.num_leaves, self.leaves_to_search, self.reorder)

    def apply(self) -> None:
        tree = self.index.options.tree
        self.index.options = self.index.options.replace(
            tree=Tree(tree.num_leaves, self.leaves_to_search), reorder=self.reorder
        )

    def record(self) -> dict[str, Any]:
        return {
            "engine": self.index.backend,
            "num_leaves": self.index.options.tree.num_leaves,
            "leaves_to_search": self.leaves_to_search,
            "reorder": self.reorder,
            "recall@10": round(self.recall, 4),
            "cost_us": round(self.cost, 2),
            "batch_us": None if self.us_batch is None else round(self.us_batch, 2),
            "single_us": None if self.us_single is None else round(self.us_single, 2),
            **self.extra,
        }


def build_auto(vectors: Any, ids: Any, options: IndexOptions) -> AnnIndex:
    vectors = check_vectors(vectors, None)
    n, dim = vectors.shape
    ids = check_ids(np.arange(n, dtype=np.int64) if ids is None else ids, n)
    if options.distance == "cosine":
        vectors = normalize_rows(vectors)
    request = options.replace(tuned={}).to_dict()
    threshold = options.exact_below if options.exact_below is not None else default_exact_below(dim)
    engines = candidate_engines() if n >= threshold else []
    if not engines:
        return _exact(vectors, ids, options, request, n, threshold)
    queries, truth, self_ids = _tuning_set(vectors, ids, options.seed)
    frontier: list[Setting] = []
    built: list[AnnIndex] = []
    shapes: dict[str, dict[str, Any]] = {}
    for engine in engines:
        for factor in LEAF_FACTORS:
            leaves = min(default_num_leaves(n) * factor, max(1, n // 8))
            key = f"{engine}/{leaves}"
            if key in shapes:
                continue
            start = time.perf_counter()
            index = AnnIndex.build(vectors, ids, _shape_options(options, engine, leaves, dim))
            seconds = time.perf_counter() - start
            built.append(index)
            found, tried = _frontier(index, queries, truth, self_ids, options.recall_target)
            frontier += found
            shapes[key] = {
                "build_seconds": round(seconds, 3),
                "tune_seconds": round(time.perf_counter() - start - seconds, 3),
                "met": len(found),
                "tuning": tried,
            }
    best, why = _choose(frontier, queries, options.tune_by)
    if best is None:
        best, why = _more_leaves(built, queries, truth, self_ids, options.recall_target)
    frontier_records = [s.record() for s in sorted(frontier, key=Setting.order)]
    del built, frontier  # the shapes not kept are freed with these
    best.apply()
    index = best.index
    chosen = best.record()
    index.options = index.options.replace(
        tuned={
            "requested": request,
            "chose": index.backend,
            "reason": f"n={n} >= exact_below={threshold}; {why}",
            **chosen,
            "ms_per_query": round((best.us_batch or best.cost) / 1000, 4),
            "target_met": best.recall >= options.recall_target,
            "tune_by": options.tune_by,
            "shapes": shapes,
            "frontier": frontier_records,
        },
    )
    index._recall = {"k": K, "recall": round(best.recall, 4), "queries": len(queries)}
    if best.recall < options.recall_target:
        log.warning(
            "auto: best recall@10 %.3f is below the target %.2f", best.recall, options.recall_target
        )
    return index


def _exact(
    vectors: np.ndarray,
    ids: np.ndarray,
    options: IndexOptions,
    request: dict[str, Any],
    n: int,
    threshold: int,
) -> AnnIndex:
    reason = (
        f"n={n} < exact_below={threshold}"
        if n < threshold
        else "no ANN engine installed (pip install 'picsearch[ann]')"
    )
    if n >= threshold:
        log.warning("auto: %s; using exact search", reason)
    tuned = {"requested": request, "chose": "exact", "reason": reason}
    index = AnnIndex.build(
        vectors, ids, IndexOptions(backend="exact", tuned=tuned, **_common(options))
    )
    index._recall = {"k": K, "recall": 1.0, "queries": 0}
    return index


def _common(options: IndexOptions) -> dict[str, Any]:
    return {
        "distance": options.distance,
        "recall_target": options.recall_target,
        "rebuild_threshold": options.rebuild_threshold,
        "seed": options.seed,
        "tune_by": options.tune_by,
    }


def _shape_options(options: IndexOptions, engine: str, leaves: int, dim: int) -> IndexOptions:
    dims_per_block = 2 if engine == "scann" or dim % 2 == 0 else 1
    return IndexOptions(
        backend=engine,
        tree=Tree(leaves, max(1, math.ceil(leaves * 0.05))),
        quantization=AH(dims_per_block, 0.2),
        reorder=REORDERS[-1],
        reorder_dtype="int8",
        **{**_common(options), "distance": "dot"},  # vectors are normalised already
    )


def _tuning_set(
    vectors: np.ndarray, ids: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-out queries drawn from the collection and their exact top K+1."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(vectors), size=min(TUNE_QUERIES, len(vectors)), replace=False))
    queries = np.ascontiguousarray(vectors[sample])
    _, truth = scan_topk(queries, Float32Store(vectors.shape[1], vectors), K + 1)
    return queries, ids[truth], ids[sample]


def _recall_at(
    index: AnnIndex,
    leaves_to_search: int,
    reorder: int,
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
) -> float:
    tree = index.options.tree
    index.options = index.options.replace(
        tree=Tree(tree.num_leaves, leaves_to_search), reorder=reorder
    )
    _, got = index.search(queries, K + 1)
    return leave_one_out(truth, got, self_ids, K)


def _frontier(
    index: AnnIndex,
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
    target: float,
) -> tuple[list[Setting], list[list[float]]]:
    """For each re-rank depth, the fewest leaves meeting target + margin.

    A deeper re-rank never needs more leaves, so each depth bisects below the
    leaves the previous one needed. The ladder stops once a depth saves no
    leaves twice running or one leaf is enough (deeper only costs more)."""
    leaves = index.options.tree.num_leaves
    goal = target + _MARGIN
    tried: list[list[float]] = []
    memo: dict[tuple[int, int], float] = {}

    def recall(searched: int, reorder: int) -> float:
        if (searched, reorder) not in memo:
            memo[searched, reorder] = _recall_at(index, searched, reorder, queries, truth, self_ids)
            tried.append([searched, reorder, round(memo[searched, reorder], 4)])
        return memo[searched, reorder]

    low_cap = max(1, math.ceil(leaves * MIN_FRACTION))
    high_cap = max(low_cap, math.ceil(leaves * MAX_FRACTION))
    found: list[Setting] = []
    upper, stalled = high_cap, 0
    for reorder in REORDERS:
        if recall(upper, reorder) < goal:
            continue  # not even at the cap: a deeper re-rank may get there
        low, high = 0, upper  # recall(low) misses (0 leaves finds nothing), recall(high) meets
        while high - low > 1:
            mid = (low + high) // 2
            if recall(mid, reorder) >= goal:
                high = mid
            else:
                low = mid
        stalled = stalled + 1 if found and high >= found[-1].leaves_to_search else 0
        found.append(
            Setting(index, high, reorder, memo[high, reorder], predicted_cost(index, high, reorder))
        )
        upper = high
        if high <= 1 or stalled >= 2:
            break
    return found, tried


def _time(settings: list[Setting], queries: np.ndarray) -> None:
    """Best-of-rounds microseconds per query, batched and one at a time, the
    settings interleaved within each round so machine load hits them alike."""
    singles = [queries[i : i + 1] for i in range(min(SINGLE_QUERIES, len(queries)))]
    for setting in settings:
        setting.us_batch = setting.us_single = math.inf
    for _ in range(_ROUNDS):
        for setting in settings:
            setting.apply()
            index = setting.index
            start = time.perf_counter()
            index.search(queries, K)
            batch = (time.perf_counter() - start) / len(queries)
            start = time.perf_counter()
            for one in singles:
                index.search(one, K)
            single = (time.perf_counter() - start) / len(singles)
            setting.us_batch = min(setting.us_batch or math.inf, 1e6 * batch)
            setting.us_single = min(setting.us_single or math.inf, 1e6 * single)


def _choose(
    frontier: list[Setting], queries: np.ndarray, tune_by: str
) -> tuple[Setting | None, str]:
    if not frontier:
        return None, ""
    if tune_by == "cost":
        best = min(frontier, key=Setting.order)
        return best, (
            f"least counted work of {len(frontier)} settings meeting the target "
            f"({best.cost:.1f} us predicted)"
        )
    _time(frontier, queries)
    return fastest(frontier)


def fastest(settings: list[Setting]) -> tuple[Setting, str]:
    """The fastest timed setting; those within 3 % of it are a tie, broken by
    the least counted work, then by engine, leaves and depth (a fixed order)."""
    quickest = min(s.us for s in settings)
    ties = [s for s in settings if s.us <= quickest * (1 + _TIE)]
    best = min(ties, key=Setting.order)
    return best, (
        f"fastest of {len(settings)} settings meeting the target, batched + single "
        f"({best.us_batch:.1f} + {best.us_single:.1f} us/query; {len(ties)} within "
        f"{_TIE:.0%}, least counted work kept)"
    )


def _more_leaves(
    indexes: list[AnnIndex],
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
    target: float,
) -> tuple[Setting, str]:
    """Nothing met the target within 10 % of the leaves: search more of them at
    the deepest re-rank; the least work meeting the target, else the most accurate."""
    tried: list[Setting] = []
    for index in indexes:
        leaves = index.options.tree.num_leaves
        for fraction in (0.25, 0.5, 1.0):
            searched = max(1, math.ceil(leaves * fraction))
            recall = _recall_at(index, searched, REORDERS[-1], queries, truth, self_ids)
            cost = predicted_cost(index, searched, REORDERS[-1])
            tried.append(Setting(index, searched, REORDERS[-1], recall, cost))
            if recall >= target + _MARGIN:
                break
    met = [s for s in tried if s.recall >= target + _MARGIN]
    if met:
        return min(met, key=Setting.order), "met the target only beyond 10 % of the leaves"
    best = max(tried, key=lambda s: (s.recall, -s.cost))
    return best, "no setting met the recall target: the most accurate"


def tune(
    index: AnnIndex,
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
    target: float,
) -> tuple[tuple[int, int, float, float], list[list[float]]]:
    """Tune one built index's (leaves_to_search, reorder) as auto does; returns
    (leaves_to_search, reorder, recall, ms per query) and the table tried."""
    found, tried = _frontier(index, queries, truth, self_ids, target)
    best, _ = _choose(found, queries, index.options.tune_by)
    if best is None:  # not within 10 % of the leaves: search more of them
        best, _ = _more_leaves([index], queries, truth, self_ids, target)
        tried.append([best.leaves_to_search, best.reorder, round(best.recall, 4)])
    best.apply()
    ms = (best.us_batch if best.us_batch is not None else best.cost) / 1000
    return (best.leaves_to_search, best.reorder, best.recall, round(ms, 4)), tried
