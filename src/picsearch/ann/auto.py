"""backend="auto": choose an engine and its parameters by measuring recall.

Small collections get exact search (fast enough and perfect). Larger ones
get a tree + 4-bit code index with a native int8 re-rank, chosen among
shapes: ScaNN (AH, 2 dimensions per code) and FAISS IVF fast-scan (codes of
the residual to the leaf, 2 dimensions each, or 1 each on the principal
directions when half the dimensions or fewer hold 98 % of the energy) + SQ8
refine, each with sqrt(N) and 2 sqrt(N) leaves.

Tuning queries are held out: up to 2 000 vectors drawn from the collection
are left out of the build, their exact top-10 among the rest is the truth,
and they join the index once it is tuned. A setting meets the target when
the lower confidence bound of its measured recall (mean minus 2 standard
errors of the per-query recall) reaches it, so queries the index never saw
keep the recall too. For each shape and each re-rank depth in a fine ladder
the fewest leaves meeting it are found by bisection, from 0.1 % of the
leaves up to 10 % (more only when nothing reaches the target there): a
frontier of settings that all meet the target, decided by recall alone.
Settings counting more than PRUNE times the least work another shape needs
are not measured.

On a large collection every shape is first tuned on a sample; ScaNN (the
costly build, growing with N) is built in full only if it wins there, FAISS
shapes always are. From the frontier, ``tune_by="time"`` (default) keeps
the fastest as timed on the held-out queries, interleaved round by round,
counting a batch and single queries alike (the CLI and the server ask one
query at a time); settings within 3 % of the best are a tie, broken by the
cost model, then by a fixed order. ``tune_by="cost"`` keeps the least
counted work (the cost model below) and never looks at a clock:
deterministic for a seed. ``info()["auto"]`` records the choice, the reason,
the screening and every setting tried.
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
from .store import Float32Store, scan_topk

__all__ = [
    "Queries",
    "Setting",
    "Shape",
    "build_auto",
    "candidate_engines",
    "choose_engine",
    "default_exact_below",
    "fastest",
    "hits_per_query",
    "predicted_cost",
    "principal_dims",
    "recall_bound",
    "shapes",
    "tune",
]

log = logging.getLogger(__name__)

# Measured (benchmarks/ann.py, docs/ann.md): below this many vectors at
# dim=256, numpy brute force answers a query about as fast as a tuned index
# at recall 0.95 on these 2-core machines; the cut scales with 1/dim.
EXACT_BELOW_AT_256 = 20_000
TUNE_QUERIES = 500  # leave-one-out queries (the Spark build's tuning); screening queries
HELD_OUT = (100, 2000)  # queries held out of the build: at least, at most (and n/20)
TIME_QUERIES = 500  # of the tuning queries, timed as one batch
SINGLE_QUERIES = 100  # of the tuning queries, also timed one call each
K = 10
REORDERS = (20, 30, 40, 60, 80, 120, 160, 240, 320)
MIN_FRACTION, MAX_FRACTION = 0.001, 0.10  # of the leaves searched
LEAF_FACTORS = (2, 1)  # num_leaves = factor x sqrt(N); more leaves often need less work
# FAISS leaves and codes on the principal directions holding this share of the
# squared norms, when they are at most half the dimensions (Fashion-MNIST
# pixels: 256 of 784 hold 98 %; recall per setting as on all 784, measured)
ENERGY = 0.98
PROJECTION_SAMPLE = 20_000
PRUNE = 2.0  # settings counting this many times the least work found are not measured
# A setting meets the target when mean recall - Z standard errors does: about
# 98 % one-sided confidence that the recall on unseen queries is as high.
CONFIDENCE_Z = 2.0
SCREEN = (5_000, 25_000)  # screening sample: at least, at most (and n/8)
SCREEN_SLACK = 0.01  # below the best recall a sample reaches: the screening target
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
    per_block = _dims_per_block(options)
    scanned = leaves_to_search * n / leaves
    return (
        c["call"]
        + c["centroid"] * leaves * index.dim
        + c["code"] * scanned * index.dim / per_block
        + c["rerank"] * reorder * index.dim
    )


def _dims_per_block(options: IndexOptions) -> int:
    q = options.quantization
    return q.dims_per_block if isinstance(q, AH) else 1


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


@dataclass(frozen=True)
class Shape:
    """One engine layout auto may build: engine, leaves = factor x sqrt(N),
    dimensions per 4-bit code, and (FAISS) the principal directions the leaves
    and codes work on, if not every dimension."""

    engine: str
    factor: int
    dims_per_block: int
    projection: int | None = None

    def leaves(self, n: int) -> int:
        return min(default_num_leaves(n) * self.factor, max(1, n // 8))

    def key(self, n: int) -> str:
        key = f"{self.engine}/{self.leaves(n)}/AH{self.dims_per_block}"
        return key if self.projection is None else f"{key}/P{self.projection}"

    def options(self, requested: IndexOptions, n: int) -> IndexOptions:
        leaves = self.leaves(n)
        return IndexOptions(
            backend=self.engine,
            tree=Tree(leaves, max(1, math.ceil(leaves * 0.05))),
            quantization=AH(self.dims_per_block, 0.2),
            reorder=REORDERS[-1],
            reorder_dtype="int8",
            projection=self.projection,
            **{**_common(requested), "distance": "dot"},  # vectors are normalised already
        )


def shapes(engines: list[str], dim: int, projection: int | None = None) -> list[Shape]:
    """Every shape auto considers for these engines, with sqrt(N) and 2 sqrt(N)
    leaves: AH codes of 2 dimensions (1 where dim is odd and FAISS needs a
    divisor); FAISS codes of 1 dimension on ``projection`` principal directions
    instead, when the vectors have so few (the same first-stage order for
    fewer codes and a cheaper centroid scan)."""
    out = []
    for engine in engines:
        if engine == "faiss" and projection is not None:
            out += [Shape(engine, f, 1, projection) for f in LEAF_FACTORS]
            continue
        block = 2 if engine == "scann" or dim % 2 == 0 else 1
        out += [Shape(engine, f, block) for f in LEAF_FACTORS]
    return out


def principal_dims(vectors: np.ndarray, seed: int) -> int | None:
    """How many principal directions hold ENERGY of the vectors' squared norm
    (rounded up to a multiple of 8), when that is at most half the dimensions;
    None otherwise (a projection would save too little)."""
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    sample = vectors[np.sort(rng.choice(n, size=min(n, PROJECTION_SAMPLE), replace=False))]
    energy = np.linalg.eigvalsh((sample.T @ sample).astype(np.float64))[::-1]
    held = np.cumsum(energy) / max(float(energy.sum()), 1e-30)
    dims = int(np.searchsorted(held, ENERGY)) + 1
    dims = min(dim, -(-dims // 8) * 8)
    return dims if dims <= dim // 2 else None


@dataclass
class Setting:
    """One built index at one (leaves_to_search, reorder) meeting the target."""

    index: AnnIndex
    leaves_to_search: int
    reorder: int
    recall: float
    cost: float
    bound: float | None = None
    us_batch: float | None = None
    us_single: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def us(self) -> float:
        """What tune_by="time" minimises: a batched query plus a single one."""
        return (self.us_batch or 0.0) + (self.us_single or 0.0)

    def order(self) -> tuple[Any, ...]:
        """The fixed tie-break: least cost, then engine, leaves, code, depth."""
        options = self.index.options
        return (
            self.cost,
            self.index.backend,
            options.tree.num_leaves,
            -_dims_per_block(options),
            self.leaves_to_search,
            self.reorder,
        )

    def apply(self) -> None:
        tree = self.index.options.tree
        self.index.options = self.index.options.replace(
            tree=Tree(tree.num_leaves, self.leaves_to_search), reorder=self.reorder
        )

    def record(self) -> dict[str, Any]:
        return {
            "engine": self.index.backend,
            "num_leaves": self.index.options.tree.num_leaves,
            "dims_per_block": _dims_per_block(self.index.options),
            "projection": self.index.options.projection,
            "leaves_to_search": self.leaves_to_search,
            "reorder": self.reorder,
            "recall@10": round(self.recall, 4),
            "recall_bound": None if self.bound is None else round(self.bound, 4),
            "cost_us": round(self.cost, 2),
            "batch_us": None if self.us_batch is None else round(self.us_batch, 2),
            "single_us": None if self.us_single is None else round(self.us_single, 2),
            **self.extra,
        }


def build_auto(vectors: Any, ids: Any, options: IndexOptions) -> AnnIndex:
    started = time.perf_counter()
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
    queries, rest, held = _held_out(vectors, ids, options.seed)
    record: dict[str, Any] = {"held_out": len(queries), "truth_seconds": _since(started)}
    candidates = shapes(engines, dim, principal_dims(vectors, options.seed))
    size = _screen_size(len(rest))
    if size < len(rest) and {"scann", "faiss"} <= set(engines):
        candidates, record["screening"] = _screen(
            vectors, ids, rest, queries, candidates, options, size
        )
    frontier, built, record["shapes"] = _tune_shapes(
        vectors[rest], ids[rest], queries, candidates, n, options
    )
    best, why = _choose(frontier, queries, options.tune_by)
    if best is None:
        best, why = _more_leaves(built, queries, options.recall_target)
    record["frontier"] = [s.record() for s in sorted(frontier, key=Setting.order)]
    del built, frontier  # the shapes not kept are freed with these
    best.apply()
    index = best.index
    index._absorb(vectors[held], ids[held])  # the held-out queries join the index
    reason = f"n={n} >= exact_below={threshold}; {why}"
    _record_choice(index, best, options, request, reason, record, started)
    return index


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _record_choice(
    index: AnnIndex,
    best: Setting,
    options: IndexOptions,
    request: dict[str, Any],
    reason: str,
    record: dict[str, Any],
    started: float,
) -> None:
    """What auto chose and why, in info()["auto"] (kept by save and rebuild)."""
    met = _met(best, options.recall_target)
    index.options = index.options.replace(
        tuned={
            "requested": request,
            "chose": index.backend,
            "reason": reason,
            **best.record(),
            "ms_per_query": round((best.us_batch or best.cost) / 1000, 4),
            "target_met": met,
            "tune_by": options.tune_by,
            "confidence_z": CONFIDENCE_Z,
            "screening": None,
            **record,
            "seconds": _since(started),
        },
    )
    index._recall = {"k": K, "recall": round(best.recall, 4), "queries": record["held_out"]}
    index._build_seconds = time.perf_counter() - started
    if not met:
        log.warning(
            "auto: best recall@10 %.3f is below the target %.2f", best.recall, options.recall_target
        )


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


def _held_out(
    vectors: np.ndarray, ids: np.ndarray, seed: int
) -> tuple[Queries, np.ndarray, np.ndarray]:
    """Queries drawn from the collection and left out of the build, with their
    exact top K among the rest; returns them, the rest's and their positions."""
    n = len(vectors)
    low, high = HELD_OUT
    m = min(high, max(low, n // 20), max(n // 4, 1 if n > 1 else 0))
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(n, size=m, replace=False))
    allowed = np.ones(n, dtype=bool)
    allowed[held] = False
    rest = np.flatnonzero(allowed)
    queries = np.ascontiguousarray(vectors[held])
    truth = _exact_top(queries, vectors, rest)
    return Queries(queries, np.where(truth >= 0, ids[truth.clip(0)], -1)), rest, held


def _exact_top(queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions (into vectors) of each query's exact top K among ``rows``, -1
    padded: FAISS's brute force when it is there (BLAS and a heap, several times
    numpy's block-wise partition), else numpy."""
    if importlib.util.find_spec("faiss") is None:
        return scan_topk(queries, Float32Store(vectors.shape[1], vectors), K, positions=rows)[1]
    import faiss

    _, found = faiss.knn(queries, vectors[rows], K, metric=faiss.METRIC_INNER_PRODUCT)
    return np.where(found >= 0, rows[found.clip(0)], -1)


def _screen_size(n: int) -> int:
    """Rows a screening build gets (n itself: build every shape in full)."""
    low, high = SCREEN
    return n if n < 8 * low else min(high, n // 8)


def _screen(
    vectors: np.ndarray,
    ids: np.ndarray,
    rest: np.ndarray,
    queries: Queries,
    candidates: list[Shape],
    options: IndexOptions,
    size: int,
) -> tuple[list[Shape], dict[str, Any]]:
    """The shapes to build in full: every FAISS shape, and a ScaNN shape only
    if it beats them all on a sample.

    ScaNN's build costs several times FAISS's and grows with N (its anisotropic
    codes train on every vector), so every shape is first tuned on a sample
    of ``size`` vectors. A sample holds fewer close neighbours than the whole
    collection and may not reach the target at all within 10 % of the
    leaves: the shapes are compared at what the best of them reaches there,
    if that is lower."""
    started = time.perf_counter()
    rng = np.random.default_rng(options.seed + 1)
    pick = np.sort(rng.choice(rest, size=size, replace=False))
    sample = np.ascontiguousarray(vectors[pick])
    few = queries.head(TUNE_QUERIES)
    truth = _exact_top(few.vectors, vectors, pick)
    few = Queries(few.vectors, np.where(truth >= 0, ids[truth.clip(0)], -1))
    built, builds = [], {}
    for shape in candidates:
        start = time.perf_counter()
        built.append(AnnIndex.build(sample, ids[pick], shape.options(options, size)))
        builds[shape.key(size)] = round(time.perf_counter() - start, 3)
    reach = max(recall_bound(_measure(ix, _cap(ix), REORDERS[-1], few)) for ix in built)
    goal = min(options.recall_target, reach - SCREEN_SLACK)
    frontier: list[Setting] = []
    for index in built:
        frontier += _frontier(index, few, goal, _budget(frontier))[0]
    best, why = _choose(frontier, few, options.tune_by)
    winner = next(
        (s for s, ix in zip(candidates, built, strict=True) if best and ix is best.index), None
    )
    full = [s for s in candidates if s.engine != "scann"]
    if winner is not None and winner.engine == "scann":
        full.append(winner)
    return full, {
        "sample": size,
        "queries": len(few),
        "target": round(goal, 4),
        "seconds": round(time.perf_counter() - started, 3),
        "build_seconds": builds,
        "winner": None if winner is None else winner.key(size),
        "why": why,
        "frontier": [s.record() for s in sorted(frontier, key=Setting.order)],
    }


def _cap(index: AnnIndex) -> int:
    """The most leaves the frontier searches (10 %)."""
    leaves = index.options.tree.num_leaves
    return max(1, math.ceil(leaves * MIN_FRACTION), math.ceil(leaves * MAX_FRACTION))


def _tune_shapes(
    vectors: np.ndarray,
    ids: np.ndarray,
    queries: Queries,
    candidates: list[Shape],
    n: int,
    options: IndexOptions,
) -> tuple[list[Setting], list[AnnIndex], dict[str, Any]]:
    """Build each shape (leaves sized for n) and find its frontier."""
    frontier: list[Setting] = []
    built: list[AnnIndex] = []
    records: dict[str, Any] = {}
    for shape in candidates:
        start = time.perf_counter()
        index = AnnIndex.build(vectors, ids, shape.options(options, n))
        seconds = time.perf_counter() - start
        built.append(index)
        found, tried = _frontier(index, queries, options.recall_target, _budget(frontier))
        frontier += found
        records[shape.key(n)] = {
            "build_seconds": round(seconds, 3),
            "tune_seconds": round(time.perf_counter() - start - seconds, 3),
            "met": len(found),
            "tuning": tried,
        }
    return frontier, built, records


def _measure(index: AnnIndex, leaves_to_search: int, reorder: int, queries: Queries) -> np.ndarray:
    tree = index.options.tree
    index.options = index.options.replace(
        tree=Tree(tree.num_leaves, leaves_to_search), reorder=reorder
    )
    return queries.per_query(index)


def _measure_until_clear(
    index: AnnIndex, leaves_to_search: int, reorder: int, queries: Queries, target: float
) -> np.ndarray:
    """Per-query recall on a first quarter of the queries when that already
    misses the target clearly (its upper bound is below), else on all: half
    the settings a bisection tries miss, and the quarter tells them apart."""
    first = queries.head(max(len(queries) // 4, min(len(queries), 100)))
    if len(first) < len(queries):
        per_query = _measure(index, leaves_to_search, reorder, first)
        if 2 * per_query.mean() - recall_bound(per_query) < target:
            return per_query
    return _measure(index, leaves_to_search, reorder, queries)


def _budget(found: list[Setting]) -> float:
    """Counted work beyond which a setting cannot win: PRUNE x the least found."""
    return PRUNE * min((s.cost for s in found), default=math.inf)


def _affordable(index: AnnIndex, reorder: int, budget: float) -> int:
    """The most leaves a search at this depth may visit within the budget."""
    if math.isinf(budget):
        return index.options.tree.num_leaves
    fixed = predicted_cost(index, 0, reorder)
    per_leaf = predicted_cost(index, 1, reorder) - fixed
    return int((budget - fixed) // per_leaf) if per_leaf > 0 else 0


def _frontier(
    index: AnnIndex, queries: Queries, target: float, budget: float = math.inf
) -> tuple[list[Setting], list[list[float]]]:
    """For each re-rank depth, the fewest leaves whose recall bound meets the target.

    A deeper re-rank never needs more leaves, so each depth bisects below the
    leaves the previous one needed. The ladder stops once a depth saves no
    leaves twice running or one leaf is enough (deeper only costs more).
    Settings whose counted work exceeds ``budget`` (PRUNE x the least work
    another shape already needs) are not measured: they could not win."""
    tried: list[list[float]] = []
    memo: dict[tuple[int, int], tuple[float, float]] = {}

    def measured(searched: int, reorder: int) -> tuple[float, float]:
        if (searched, reorder) not in memo:
            per_query = _measure_until_clear(index, searched, reorder, queries, target)
            memo[searched, reorder] = float(per_query.mean()), recall_bound(per_query)
            tried.append([searched, reorder, *(round(v, 4) for v in memo[searched, reorder])])
        return memo[searched, reorder]

    def meets(searched: int, reorder: int) -> bool:
        return measured(searched, reorder)[1] >= target

    found: list[Setting] = []
    upper, stalled = _cap(index), 0
    for reorder in REORDERS:
        top = min(upper, _affordable(index, reorder, budget))
        if top < 1:
            break  # a deeper re-rank costs more still
        if not meets(top, reorder):
            continue  # not even at the cap: a deeper re-rank may get there
        low, high = 0, top  # 0 leaves finds nothing; `top` meets
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if meets(mid, reorder) else (mid, high)
        stalled = stalled + 1 if found and high >= found[-1].leaves_to_search else 0
        recall, bound = memo[high, reorder]
        cost = predicted_cost(index, high, reorder)
        found.append(Setting(index, high, reorder, recall, cost, bound))
        upper = high
        if high <= 1 or stalled >= 2:
            break
    return found, tried


def _time(settings: list[Setting], queries: np.ndarray) -> None:
    """Best-of-rounds microseconds per query, batched and one at a time, the
    settings interleaved within each round so machine load hits them alike."""
    batch = queries[:TIME_QUERIES]
    singles = [queries[i : i + 1] for i in range(min(SINGLE_QUERIES, len(queries)))]
    for setting in settings:
        setting.us_batch = setting.us_single = math.inf
    for _ in range(_ROUNDS):
        for setting in settings:
            setting.apply()
            search = setting.index.search
            start = time.perf_counter()
            search(batch, K)
            batched = (time.perf_counter() - start) / len(batch)
            start = time.perf_counter()
            for one in singles:
                search(one, K)
            single = (time.perf_counter() - start) / len(singles)
            setting.us_batch = min(setting.us_batch or math.inf, 1e6 * batched)
            setting.us_single = min(setting.us_single or math.inf, 1e6 * single)


def _choose(frontier: list[Setting], queries: Queries, tune_by: str) -> tuple[Setting | None, str]:
    if not frontier:
        return None, ""
    if tune_by == "cost":
        best = min(frontier, key=Setting.order)
        return best, (
            f"least counted work of {len(frontier)} settings meeting the target "
            f"({best.cost:.1f} us predicted)"
        )
    contenders = [s for s in frontier if s.cost <= _budget(frontier)]
    _time(contenders, queries.vectors)
    return fastest(contenders)


def fastest(settings: list[Setting]) -> tuple[Setting, str]:
    """The fastest timed setting; those within 3 % of it are a tie, broken by
    the least counted work, then by engine, leaves, code and depth (a fixed order)."""
    quickest = min(s.us for s in settings)
    ties = [s for s in settings if s.us <= quickest * (1 + _TIE)]
    best = min(ties, key=Setting.order)
    return best, (
        f"fastest of {len(settings)} settings meeting the target, batched + single "
        f"({best.us_batch:.1f} + {best.us_single:.1f} us/query; {len(ties)} within "
        f"{_TIE:.0%}, least counted work kept)"
    )


def _more_leaves(indexes: list[AnnIndex], queries: Queries, target: float) -> tuple[Setting, str]:
    """Nothing met the target within 10 % of the leaves: search more of them at
    the deepest re-rank; the least work meeting the target, else the most accurate."""
    tried: list[Setting] = []
    for index in indexes:
        leaves = index.options.tree.num_leaves
        for fraction in (0.25, 0.5, 1.0):
            searched = max(1, math.ceil(leaves * fraction))
            per_query = _measure(index, searched, REORDERS[-1], queries)
            cost = predicted_cost(index, searched, REORDERS[-1])
            setting = Setting(
                index,
                searched,
                REORDERS[-1],
                float(per_query.mean()),
                cost,
                recall_bound(per_query),
            )
            tried.append(setting)
            if _met(setting, target):
                break
    met = [s for s in tried if _met(s, target)]
    if met:
        return min(met, key=Setting.order), "met the target only beyond 10 % of the leaves"
    best = max(tried, key=lambda s: (s.recall, -s.cost))
    return best, "no setting met the recall target: the most accurate"


def _met(setting: Setting, target: float) -> bool:
    return (setting.bound if setting.bound is not None else setting.recall) >= target


def tune(
    index: AnnIndex,
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
    target: float,
) -> tuple[tuple[int, int, float, float], list[list[float]]]:
    """Tune one built index's (leaves_to_search, reorder) as auto does, on
    leave-one-out queries (``truth`` their exact top K+1 ids, their own among
    them); returns (leaves_to_search, reorder, recall, ms per query) and the
    table tried."""
    tuning = Queries(queries, truth, self_ids)
    found, tried = _frontier(index, tuning, target)
    best, _ = _choose(found, tuning, index.options.tune_by)
    if best is None:  # not within 10 % of the leaves: search more of them
        best, _ = _more_leaves([index], tuning, target)
        tried.append([best.leaves_to_search, best.reorder, round(best.recall, 4)])
    best.apply()
    ms = (best.us_batch if best.us_batch is not None else best.cost) / 1000
    return (best.leaves_to_search, best.reorder, best.recall, round(ms, 4)), tried
