"""Timing the settings that meet the target: interleaved rounds, best of, so
machine load hits every setting alike; near-ties go to the cost model."""

from __future__ import annotations

import math
import time

import numpy as np

from .candidates import Setting
from .recall import K

__all__ = ["SINGLE_QUERIES", "TIME_QUERIES", "fastest", "time_settings"]

TIME_QUERIES = 500  # of the tuning queries, timed as one batch
SINGLE_QUERIES = 100  # of the tuning queries, also timed one call each
_ROUNDS = 3  # interleaved timing rounds, best of
_TIE = 0.03  # timings this close are noise: the cost model decides


def time_settings(settings: list[Setting], queries: np.ndarray) -> None:
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
