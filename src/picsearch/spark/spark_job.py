"""The Spark embedding job: one task per unit, batches through Arrow (``mapInPandas``).

Each task runs the same ``embed_unit`` as the single-machine engine. The
model is loaded once per executor Python process (workers are reused across
tasks) with as many threads as the task has cores, so an executor running
one task per core does not oversubscribe them. A failed task is retried by
Spark; its shard is written under a temporary name and renamed only when
complete, so a retry never leaves half a shard nor a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

from ..errors import PicsearchError
from .shards import ShardResult
from .sources import Unit
from .work import EmbedParams, embed_unit

__all__ = ["run_on_spark", "JobFailed", "RESULT_SCHEMA", "describe_failure"]

RESULT_SCHEMA = (
    "unit long, name string, unit_key string, source string, status string, rows long, "
    "skipped string, sha256 string, bytes long, pid long, encoder_loads long, attempt int, "
    "seconds double, metadata_dropped long"
)


class JobFailed(PicsearchError):
    """A Spark job failed after its retries; finished shards are kept for the re-run."""


def run_on_spark(spark: Any, units: list[Unit], params: EmbedParams) -> list[ShardResult]:
    """Run one task per unit on the cluster and collect what each did."""
    rows = [(unit.index, unit.to_json()) for unit in units]
    frame = spark.sparkContext.parallelize(rows, len(rows)).toDF("unit long, spec string")
    results = frame.mapInPandas(partial(_embed_partition, params=params), RESULT_SCHEMA)
    try:
        collected = results.collect()
    except Exception as exc:  # Py4J and PySpark errors: the cause is in the message
        raise JobFailed(
            f"the Spark embedding job failed ({describe_failure(exc)}); finished shards are kept: "
            "run the same command again to write the rest"
        ) from None
    return [_from_row(row.asDict()) for row in collected]


def _embed_partition(frames: Iterator[Any], *, params: EmbedParams) -> Iterator[Any]:
    """Runs on an executor: the partition's units (one per partition), one result row each."""
    import pandas as pd
    from pyspark import TaskContext

    context = TaskContext.get()
    threads = context.cpus() if context is not None else 1
    attempt = context.attemptNumber() if context is not None else 0
    for frame in frames:
        for spec in frame["spec"]:
            result = embed_unit(Unit.from_json(spec), params, threads=threads, attempt=attempt)
            row = {**vars(result), "skipped": json.dumps(result.skipped)}
            yield pd.DataFrame([row])


def _from_row(row: dict[str, Any]) -> ShardResult:
    return ShardResult(**{**row, "skipped": json.loads(row["skipped"])})


def describe_failure(exc: BaseException) -> str:
    """The Python error behind a failed Spark job, in one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line or "Exception:" in line]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:300]
