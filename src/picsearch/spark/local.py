"""The single-machine engine: the same units, tasks and shards as on Spark, in threads here.

Needs neither Spark nor a JVM. Decoding (Pillow) and inference (ONNX
Runtime) release the GIL, so ``workers`` units at once use the cores.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from .shards import ShardResult
from .sources import Unit
from .work import EmbedParams, embed_unit

__all__ = ["run_locally"]


def run_locally(
    units: list[Unit], params: EmbedParams, *, workers: int | None = None
) -> list[ShardResult]:
    """Run every unit's task; a failing unit stops the run, finished shards stay."""
    if not units:
        return []
    count = max(1, min(workers or os.cpu_count() or 1, len(units)))
    if count == 1:
        return [embed_unit(unit, params) for unit in units]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="picsearch-embed") as pool:
        return list(pool.map(lambda unit: embed_unit(unit, params), units))
