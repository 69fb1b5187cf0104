"""backend="auto": choose an engine and its parameters by measuring recall.

Small collections get exact search (fast enough and perfect). Larger ones
get a tree of leaves and quantized vectors, chosen among shapes with sqrt(N)
and 2 sqrt(N) leaves: FAISS IVF-SQ8 (residual codes scored directly, when
the codes work on every dimension); FAISS IVF fast-scan (4-bit codes of the
residual to the leaf, 1 dimension each, on the principal directions when
half the dimensions or fewer hold 98 % of the energy) + SQ8 refine; and
ScaNN (spherical leaves, AH with 2 dimensions per code, int8 re-rank), with
as many leaves, tuned when FAISS is not installed or when no FAISS shape
meets the target within 10 % of its leaves. Measured on both benchmark sets
(docs/ann.md), ScaNN's tuned frontier took 2.3-3.9x FAISS's time per query at
the target (its int8 re-rank needs many more leaves than its float32 one),
and a screening sample, which an earlier version tuned both engines on to
spare ScaNN's costly full build, picked ScaNN on both sets and so spent
that build (54-90 s) for nothing.

FAISS shapes with as many leaves share one k-means (trained_leaves), and
a FAISS shape on every dimension whose leaves cannot hold the target's share
of the held-out queries' neighbours within the leaves it may search is not
built at all (leaf_bound). When no tree meets the target within 10 % of its
leaves, an HNSW graph does (graph_fallback).

Tuning queries are held out: up to 2 000 vectors drawn from the collection
are left out of the build, their exact top-10 among the rest is the truth,
and they join the index once it is tuned. A setting meets the target when
the lower confidence bound of its measured recall (mean minus 2 standard
errors of the per-query recall) reaches it, so queries the index never saw
keep the recall too. For each shape and each re-rank depth in a fine ladder
the fewest leaves meeting it are found by bisection, from 0.1 % of the
leaves up to 10 % (more only when nothing reaches the target there): a
frontier of settings that all meet the target, decided by recall alone.
Settings counting more than the least work another shape needs are not
measured (more than twice it with ``tune_by="time"``, where the model may be
off): they could not be chosen.

From the frontier, ``tune_by="cost"`` (default) keeps the least counted
work (the cost model, which counts a batched and a single query alike: the
CLI and the server ask one query at a time) and never looks at a clock, so
the choice is deterministic for a seed. ``tune_by="time"`` keeps the fastest
as timed on the held-out queries, interleaved round by round; settings
within 3 % of the best are a tie, broken by the cost model, then by a fixed
order.
``info()["auto"]`` records the choice, the reason and every setting tried.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import AnnIndex
from .candidates import (
    Setting,
    Shape,
    common_options,
    predicted_cost,
    principal_dims,
    reorders_for,
    shapes,
)
from .checks import check_ids, check_vectors, normalize_rows
from .graph_fallback import tune_graph
from .leaf_bound import leaf_recall, truth_positions
from .options import IndexOptions
from .recall import CONFIDENCE_Z, K, Queries, hits_per_query, recall_bound
from .store import Float32Store, scan_topk
from .timing import fastest
from .tuning import (
    affordable_leaves,
    choose_setting,
    find_frontier,
    leaf_cap_of,
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
TUNE_QUERIES = 500  # leave-one-out queries (the Spark build's tuning)
HELD_OUT = (100, 2000)  # queries held out of the build: at least, at most (and n/20)
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
    first = [s for s in candidates if s.engine == "faiss"] or candidates
    frontier, built, record["shapes"] = _tune_shapes(
        vectors[rest], ids[rest], queries, first, n, options
    )
    later = [s for s in candidates if s not in first]
    if not frontier and later:  # FAISS misses the target within 10 % of its leaves
        more, more_built, more_records = _tune_shapes(
            vectors[rest], ids[rest], queries, later, n, options
        )
        frontier, built = frontier + more, built + more_built
        record["shapes"].update(more_records)
    best, why = choose_setting(frontier, queries, options.tune_by)
    if best is None:  # no tree meets the target within 10 % of its leaves
        graph = tune_graph(vectors[rest], ids[rest], queries, options)
        if graph is not None:
            del built, frontier
            reason = f"n={n} >= exact_below={threshold}; {GRAPH_REASON}"
            chosen = Chosen(graph.record(), graph.recall, met=True, reason=reason)
            return _finish(graph.index, vectors[held], ids[held], chosen, request, record, started)
        built = built or _build_one(vectors[rest], ids[rest], candidates[0], n, options)
        best, why = more_leaves(built, queries, options.recall_target)
    record["frontier"] = [s.record() for s in sorted(frontier, key=Setting.order)]
    del built, frontier  # the shapes not kept are freed with these
    best.apply()
    chosen = Chosen(
        {
            **best.record(),
            "ms_per_query": round((best.us_batch or best.cost) / 1000, 4),
            "tune_by": options.tune_by,
            "confidence_z": CONFIDENCE_Z,
        },
        best.recall,
        met=meets_target(best, options.recall_target),
        reason=f"n={n} >= exact_below={threshold}; {why}",
    )
    return _finish(best.index, vectors[held], ids[held], chosen, request, record, started)


GRAPH_REASON = (
    "no tree of leaves met the target within 10 % of its leaves: an HNSW graph, "
    "the least efSearch meeting it"
)


def _build_one(
    vectors: np.ndarray, ids: np.ndarray, shape: Shape, n: int, options: IndexOptions
) -> list[AnnIndex]:
    """A shape built for searching beyond 10 % of its leaves, when every shape was
    judged unable to reach the target within them and no graph was possible."""
    return [AnnIndex.build(vectors, ids, shape.options(options, n))]


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


@dataclass
class Chosen:
    """What auto settled on: the record of the setting (or graph), its recall on
    the held-out queries, whether that meets the target, and why it was chosen."""

    record: dict[str, Any]
    recall: float
    met: bool
    reason: str


def _finish(
    index: AnnIndex,
    held_vectors: np.ndarray,
    held_ids: np.ndarray,
    chosen: Chosen,
    request: dict[str, Any],
    record: dict[str, Any],
    started: float,
) -> AnnIndex:
    """auto's index: the held-out queries join it, and what it chose and why goes
    to info()["auto"] (kept by save and rebuild)."""
    index.absorb(held_vectors, held_ids)
    index.options = index.options.replace(
        tuned={
            "requested": request,
            "chose": index.backend,
            "reason": chosen.reason,
            **chosen.record,
            "target_met": chosen.met,
            **record,
            "seconds": _since(started),
        },
    )
    index._recall = {"k": K, "recall": round(chosen.recall, 4), "queries": record["held_out"]}
    index._build_seconds = time.perf_counter() - started
    index.rebuilder = build_auto
    if not chosen.met:
        target = index.options.recall_target
        log.warning("auto: best recall@10 %.3f is below the target %.2f", chosen.recall, target)
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


def _tune_shapes(
    vectors: np.ndarray,
    ids: np.ndarray,
    queries: Queries,
    candidates: list[Shape],
    n: int,
    options: IndexOptions,
) -> tuple[list[Setting], list[AnnIndex], dict[str, Any]]:
    """Build each shape (leaves sized for n) and find its frontier; shapes whose
    leaves cannot hold the target's share of the neighbours are not built."""
    frontier: list[Setting] = []
    built: list[AnnIndex] = []
    records: dict[str, Any] = {}
    truth = truth_positions(queries, ids)
    for shape in candidates:
        start = time.perf_counter()
        shape_options = shape.options(options, n)
        reach = _leaves_reach(vectors, queries, truth, shape_options, frontier)
        least = _least_leaves(reach, options.recall_target)
        if least is None and reach is not None:
            records[shape.key(n)] = {**_not_built(reach), "leaves_seconds": _since(start)}
            continue
        index = AnnIndex.build(vectors, ids, shape_options)
        seconds = time.perf_counter() - start
        built.append(index)
        found, tried = find_frontier(
            index,
            queries,
            options.recall_target,
            work_budget(frontier, options.tune_by),
            least=least or 1,
        )
        frontier += found
        records[shape.key(n)] = {
            "build_seconds": round(seconds, 3),
            "tune_seconds": round(time.perf_counter() - start - seconds, 3),
            "met": len(found),
            "tuning": tried,
            **({} if reach is None else {"least_leaves": least}),
        }
    return frontier, built, records


def _leaves_reach(
    vectors: np.ndarray,
    queries: Queries,
    truth: np.ndarray,
    options: IndexOptions,
    frontier: list[Setting],
) -> np.ndarray | None:
    """For each number of leaves a FAISS shape on every dimension may search (10 %
    at most, and no more than the work budget the frontier so far leaves it),
    the recall its leaves alone allow (leaf_bound); None for other shapes."""
    if options.backend != "faiss" or options.projection is not None:
        return None
    from .faiss_backend import FaissEngine

    n, dim = vectors.shape
    cheapest = reorders_for(options)[0]
    budget = work_budget(frontier, options.tune_by)
    searched = min(leaf_cap_of(options), affordable_leaves(options, n, dim, cheapest, budget))
    if searched < 1:
        return np.zeros(0)
    centroids = FaissEngine(dim, options).leaves(vectors)
    return leaf_recall(centroids, queries.vectors, vectors, truth, searched)


def _not_built(reach: np.ndarray) -> dict[str, Any]:
    """The record of a shape whose leaves cannot reach the target."""
    why = (
        f"its best {len(reach)} leaves (all the work budget allows, 10 % at most) "
        "hold too few of the neighbours"
        if len(reach)
        else "the work budget affords it no leaf"
    )
    return {
        "skipped": why,
        "leaf_recall": round(float(reach[-1]), 4) if len(reach) else None,  # not judged
        "met": 0,
    }


def _least_leaves(reach: np.ndarray | None, target: float) -> int | None:
    """The fewest leaves whose leaf recall reaches the target (1 when unknown),
    None when no affordable number of leaves does."""
    if reach is None:
        return 1
    enough = np.flatnonzero(reach >= target)
    return int(enough[0]) + 1 if len(enough) else None
