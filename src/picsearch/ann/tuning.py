"""Tuning one built index: the frontier of (leaves_to_search, reorder) settings
whose recall bound meets the target, found by bisection over the leaves for
each re-rank depth, and the choice among them (by time or by counted work)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .base import AnnIndex
from .candidates import Setting, counted_work, predicted_cost, reorders_of
from .options import IndexOptions, Tree, leaf_tree
from .recall import Queries, recall_bound
from .timing import fastest, time_settings

__all__ = [
    "affordable_leaves",
    "choose_setting",
    "find_frontier",
    "leaf_cap",
    "leaf_cap_of",
    "measure_setting",
    "meets_target",
    "more_leaves",
    "tune",
    "work_budget",
]

MIN_FRACTION, MAX_FRACTION = 0.001, 0.10  # of the leaves searched
# Settings counting this many times the least work found are not measured. By
# counted work (the default) nothing counting more than the least can be chosen
# (a hair over 1, so that a setting counting exactly the least still fits after
# affordable_leaves' floating-point division); by timings the model may be off,
# so twice the least is still timed.
PRUNE = {"cost": 1.0 + 1e-9, "time": 2.0}


def leaf_cap(index: AnnIndex) -> int:
    """The most leaves the frontier searches (10 %)."""
    return leaf_cap_of(index.options)


def leaf_cap_of(options: IndexOptions) -> int:
    leaves = leaf_tree(options).num_leaves
    return max(1, math.ceil(leaves * MIN_FRACTION), math.ceil(leaves * MAX_FRACTION))


def measure_setting(
    index: AnnIndex, leaves_to_search: int, reorder: int, queries: Queries
) -> np.ndarray:
    tree = leaf_tree(index.options)
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
        per_query = measure_setting(index, leaves_to_search, reorder, first)
        if 2 * per_query.mean() - recall_bound(per_query) < target:
            return per_query
    return measure_setting(index, leaves_to_search, reorder, queries)


def work_budget(found: list[Setting], tune_by: str = "cost") -> float:
    """Counted work beyond which a setting cannot win: PRUNE[tune_by] x the least found."""
    return PRUNE[tune_by] * min((s.cost for s in found), default=math.inf)


def _affordable(index: AnnIndex, reorder: int, budget: float) -> int:
    return affordable_leaves(index.options, len(index), index.dim, reorder, budget)


def affordable_leaves(options: IndexOptions, n: int, dim: int, reorder: int, budget: float) -> int:
    """The most leaves a search at this depth may visit within the budget."""
    if math.isinf(budget):
        return leaf_tree(options).num_leaves
    fixed = counted_work(options, n, dim, 0, reorder)
    per_leaf = counted_work(options, n, dim, 1, reorder) - fixed
    return int((budget - fixed) // per_leaf) if per_leaf > 0 else 0


def find_frontier(
    index: AnnIndex, queries: Queries, target: float, budget: float = math.inf, *, least: int = 1
) -> tuple[list[Setting], list[list[float]]]:
    """For each re-rank depth, the fewest leaves whose recall bound meets the target.

    The search gallops up from ``least`` leaves (fewer cannot hold enough of the
    neighbours: leaf_bound), doubling until a setting meets the target, then
    bisects below it. A deeper re-rank never needs more leaves, so each depth
    searches below the leaves the previous one needed. The ladder stops once a
    depth saves no leaves twice running or one leaf is enough (deeper only
    costs more). Settings whose counted work exceeds ``budget`` (PRUNE x the
    least work another shape already needs) are not measured: they could not win."""
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
    upper, stalled = leaf_cap(index), 0
    for reorder in reorders_of(index):
        top = min(upper, _affordable(index, reorder, budget))
        if top < 1:
            break  # a deeper re-rank costs more still
        low, high = _gallop(meets, reorder, least, top)
        if high is None:
            continue  # not even at the cap: a deeper re-rank may get there
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


def _gallop(
    meets: Callable[[int, int], bool], reorder: int, least: int, top: int
) -> tuple[int, int | None]:
    """(a count of leaves known to miss, the first of least, 2 least, ... top that
    meets the target, or None)."""
    low, probe = max(0, least - 1), max(1, least)
    while probe <= top:
        if meets(probe, reorder):
            return low, probe
        low, probe = probe, (top if probe < top < 2 * probe else 2 * probe)
        if low == top:
            break
    return low, None


def choose_setting(
    frontier: list[Setting], queries: Queries, tune_by: str
) -> tuple[Setting | None, str]:
    if not frontier:
        return None, ""
    if tune_by == "cost":
        best = min(frontier, key=Setting.order)
        return best, (
            f"least counted work of {len(frontier)} settings meeting the target "
            f"({best.cost:.1f} us predicted)"
        )
    contenders = [s for s in frontier if s.cost <= work_budget(frontier, tune_by)]
    time_settings(contenders, queries.vectors)
    return fastest(contenders)


def more_leaves(indexes: list[AnnIndex], queries: Queries, target: float) -> tuple[Setting, str]:
    """Nothing met the target within 10 % of the leaves: search more of them at
    the deepest re-rank; the least work meeting the target, else the most accurate."""
    tried: list[Setting] = []
    for index in indexes:
        leaves = leaf_tree(index.options).num_leaves
        deepest = reorders_of(index)[-1]
        for fraction in (0.25, 0.5, 1.0):
            searched = max(1, math.ceil(leaves * fraction))
            per_query = measure_setting(index, searched, deepest, queries)
            cost = predicted_cost(index, searched, deepest)
            setting = Setting(
                index,
                searched,
                deepest,
                float(per_query.mean()),
                cost,
                recall_bound(per_query),
            )
            tried.append(setting)
            if meets_target(setting, target):
                break
    met = [s for s in tried if meets_target(s, target)]
    if met:
        return min(met, key=Setting.order), "met the target only beyond 10 % of the leaves"
    best = max(tried, key=lambda s: (s.recall, -s.cost))
    return best, "no setting met the recall target: the most accurate"


def meets_target(setting: Setting, target: float) -> bool:
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
    found, tried = find_frontier(index, tuning, target)
    best, _ = choose_setting(found, tuning, index.options.tune_by)
    if best is None:  # not within 10 % of the leaves: search more of them
        best, _ = more_leaves([index], tuning, target)
        tried.append([best.leaves_to_search, best.reorder, round(best.recall, 4)])
    best.apply()
    ms = (best.us_batch if best.us_batch is not None else best.cost) / 1000
    return (best.leaves_to_search, best.reorder, best.recall, round(ms, 4)), tried
