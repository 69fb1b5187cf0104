"""backend="auto": choose an engine and its parameters by measuring recall.

Small collections get exact search (fast enough and perfect). Larger ones
get a tree + 4-bit code index with a native int8 re-rank, chosen among
shapes: ScaNN (spherical leaves, AH, 2 dimensions per code) and FAISS IVF
fast-scan (codes of the residual to the leaf, 1 dimension each, on the
principal directions when half the dimensions or fewer hold 98 % of the
energy) + SQ8 refine, each with sqrt(N) and 2 sqrt(N) leaves.

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
costly build, growing with N) is built in full only if it wins there at the
recall target, FAISS shapes always are. From the frontier, ``tune_by="time"`` (default) keeps
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
import time
from typing import Any

import numpy as np

from .base import AnnIndex
from .candidates import (
    REORDERS,
    Setting,
    Shape,
    common_options,
    predicted_cost,
    principal_dims,
    shapes,
)
from .checks import check_ids, check_vectors, normalize_rows
from .options import IndexOptions
from .recall import CONFIDENCE_Z, K, Queries, hits_per_query, recall_bound
from .store import Float32Store, scan_topk
from .timing import fastest
from .tuning import (
    choose_setting,
    find_frontier,
    leaf_cap,
    measure_setting,
    meets_target,
    more_leaves,
    tune,
    work_budget,
)

__all__ = [
    "K",
    "TUNE_QUERIES",
    "Queries",
    "Setting",
    "Shape",
    "build_auto",
    "candidate_engines",
    "choose_engine",
    "default_exact_below",
    "fastest",
    "full_builds",
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
SCREEN = (5_000, 25_000)  # screening sample: at least, at most (and n/8)
SCREEN_SLACK = 0.01  # below the best recall a sample reaches: the screening target
_frontier = find_frontier  # the name the frontier search had when it lived here


def default_exact_below(dim: int) -> int:
    return max(1000, int(EXACT_BELOW_AT_256 * 256 / max(dim, 1)))


def choose_engine() -> str | None:
    """ScaNN (anisotropic AH is what the design asks for), else FAISS, else None."""
    engines = candidate_engines()
    return engines[0] if engines else None


def candidate_engines() -> list[str]:
    """The installed engines auto builds and compares."""
    return [name for name in ("scann", "faiss") if importlib.util.find_spec(name) is not None]


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
        exact = _exact(vectors, ids, options, request, n, threshold)
        exact.rebuilder = build_auto  # a rebuild re-measures: it may now pick an engine
        return exact
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
    best, why = choose_setting(frontier, queries, options.tune_by)
    if best is None:
        best, why = more_leaves(built, queries, options.recall_target)
    record["frontier"] = [s.record() for s in sorted(frontier, key=Setting.order)]
    del built, frontier  # the shapes not kept are freed with these
    best.apply()
    index = best.index
    index.absorb(vectors[held], ids[held])  # the held-out queries join the index
    reason = f"n={n} >= exact_below={threshold}; {why}"
    _record_choice(index, best, options, request, reason, record, started)
    index.rebuilder = build_auto
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
    met = meets_target(best, options.recall_target)
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
        vectors, ids, IndexOptions(backend="exact", tuned=tuned, **common_options(options))
    )
    index._recall = {"k": K, "recall": 1.0, "queries": 0}
    return index


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
    if it beats them all on a sample at the recall target.

    ScaNN's build costs several times FAISS's and grows with N (its anisotropic
    codes train on every vector), so shapes are first tuned on a sample of
    ``size`` vectors. A sample holds fewer close neighbours than the whole
    collection and, its re-ranking copy int8 like the full index's, may not
    reach the target at all within 10 % of the leaves: the FAISS shapes (the
    cheap builds) go first, and when they cannot reach the target there the
    sample cannot tell the engines apart at it, so ScaNN is not built on it
    either. Otherwise the shapes are compared at what the best reaches, if
    that is lower than the target."""
    started = time.perf_counter()
    rng = np.random.default_rng(options.seed + 1)
    pick = np.sort(rng.choice(rest, size=size, replace=False))
    sample = np.ascontiguousarray(vectors[pick])
    few = queries.head(TUNE_QUERIES)
    truth = _exact_top(few.vectors, vectors, pick)
    few = Queries(few.vectors, np.where(truth >= 0, ids[truth.clip(0)], -1))
    ordered = sorted(candidates, key=lambda shape: shape.engine == "scann")  # FAISS first
    built: list[tuple[Shape, AnnIndex]] = []
    builds: dict[str, float] = {}
    reach = 0.0
    for shape in ordered:
        if shape.engine == "scann" and reach - SCREEN_SLACK < options.recall_target:
            break  # the sample cannot judge the engines at the target
        start = time.perf_counter()
        index = AnnIndex.build(sample, ids[pick], shape.options(options, size))
        builds[shape.key(size)] = round(time.perf_counter() - start, 3)
        built.append((shape, index))
        reach = max(reach, recall_bound(measure_setting(index, leaf_cap(index), REORDERS[-1], few)))
    goal = min(options.recall_target, reach - SCREEN_SLACK)
    frontier: list[Setting] = []
    for _, index in built:
        frontier += find_frontier(index, few, goal, work_budget(frontier))[0]
    best, why = choose_setting(frontier, few, options.tune_by)
    winner = next((shape for shape, index in built if best and index is best.index), None)
    full = full_builds(candidates, winner, informative=goal >= options.recall_target)
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


def full_builds(candidates: list[Shape], winner: Shape | None, *, informative: bool) -> list[Shape]:
    """The shapes built in full after screening: every FAISS shape, and the
    ScaNN shape that won, only if the sample reached the recall target. A
    sample that cannot reach it (a sample holds fewer close neighbours)
    compares the engines near its own ceiling, where they differ otherwise
    than at the target (clustered 300k x 128: ScaNN won a 25 000-vector
    sample at recall 0.85, then needed 20 leaves where FAISS needs 1 at 0.95,
    after a full ScaNN build that cost twice FAISS's)."""
    full = [s for s in candidates if s.engine != "scann"]
    if informative and winner is not None and winner.engine == "scann":
        full.append(winner)
    return full


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
        found, tried = find_frontier(index, queries, options.recall_target, work_budget(frontier))
        frontier += found
        records[shape.key(n)] = {
            "build_seconds": round(seconds, 3),
            "tune_seconds": round(time.perf_counter() - start - seconds, 3),
            "met": len(found),
            "tuning": tried,
        }
    return frontier, built, records
