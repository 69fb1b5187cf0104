"""``picsearch embed``: list the units, run the missing ones, write the manifest.

The driver decides what to run: a unit whose shard the previous manifest
lists (same inputs, same model, file still there) is not run again; every
other unit goes to a task, which itself keeps a finished shard an
interrupted run left without a manifest. The manifest is written last.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..concepts import DEFAULT_LEVEL, check_level
from ..encoders import load_encoder
from ..errors import InvalidInput
from ..images import DEFAULT_MAX_PIXELS
from ..ingest import IndexSummary, Skip
from ..query import check_positive
from . import shards, storage
from .sources import Unit, list_units
from .work import BatchHook, EmbedParams

__all__ = ["EmbedSummary", "embed", "ENGINES"]

log = logging.getLogger("picsearch")

ENGINES = ("local", "spark")


@dataclass
class EmbedSummary:
    """What one ``embed`` run did."""

    out: str
    engine: str
    units: int = 0
    written: int = 0
    kept: int = 0
    rows: int = 0  # images in the finished embeddings
    embedded: int = 0  # images this run embedded
    skipped: list[Skip] = field(default_factory=list)
    retried: int = 0  # units whose task needed more than one attempt
    seconds: float = 0.0
    shards: list[shards.ShardResult] = field(default_factory=list)
    #: Files of types picsearch does not read, by extension (".mov": 120).
    ignored: dict[str, int] = field(default_factory=dict)
    metadata_dropped: int = 0  # broken metadata fields left out (photos kept)
    concepts: str = DEFAULT_LEVEL  # the concept detectors' level

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.units} shards ({self.written} written, {self.kept} already done), "
            f"{self.rows} images, skipped {len(self.skipped)}, in {self.seconds:.1f} s "
            f"({self.images_per_second:.1f} images/s embedded, engine {self.engine})"
            + _counted(self.ignored, self.metadata_dropped)
        )


def _counted(ignored: dict[str, int], dropped: int) -> str:
    """ "; ignored: 120 .mov; 2 broken metadata fields left out", as ``index`` says it."""
    said = IndexSummary(ignored=ignored, metadata_dropped=dropped)
    return said.ignored_text() + said.dropped_text()


def embed(
    sources: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str = "default",
    engine: str = "local",
    spark: Any = None,
    master: str | None = None,
    files_per_unit: int = 1000,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    concepts: str | None = None,
    on_batch: BatchHook | None = None,
) -> EmbedSummary:
    """Embed folders and tar shards into Parquet shards under ``out`` (a path or URI).

    ``engine="spark"`` runs one task per unit on ``spark`` (a SparkSession), or
    on a session for ``master``; ``"local"`` runs them here, ``workers`` at once.
    Each photo's capture time, camera and place are read, and ``concepts`` ("off",
    "fast" or "full", as ``Library.index`` takes it; None: the level ``out`` was
    embedded with, else "fast") picks the concept detectors run on it.
    ``on_batch(unit, batches)`` is called in the task after each written batch.
    """
    if engine not in ENGINES:
        raise InvalidInput(f"engine={engine!r} must be one of {', '.join(ENGINES)}")
    check_positive(batch_size=batch_size, max_pixels=max_pixels)
    started = time.perf_counter()
    out = os.fspath(out)
    paths = [os.fspath(s) for s in sources]
    encoder = load_encoder(model)  # names the model; its weights load in the tasks
    previous = shards.read_manifest(out, missing_ok=True)
    shards.check_model(previous, out, model, encoder.model_id)
    level = check_level(concepts or (previous or {}).get("concepts") or DEFAULT_LEVEL)
    ignored: dict[str, int] = {}
    units = list_units(paths, files_per_unit=files_per_unit, ignored=ignored)
    params = EmbedParams(out, model, encoder.model_id, max_pixels, batch_size, on_batch, level)
    done = _listed(previous, units, out) if _level_of(previous) == level else {}
    todo = [unit for unit in units if unit.index not in done]
    log.info("%d shards to write, %d already done, engine %s", len(todo), len(done), engine)
    results = _run(todo, params, engine, spark=spark, master=master, workers=workers)
    every = sorted([*done.values(), *results], key=lambda r: r.unit)
    storage.remove_temporaries(out)
    shards.write_manifest(out, _manifest(params, encoder, paths, files_per_unit, ignored, every))
    summary = _summary(out, engine, every, time.perf_counter() - started)
    summary.ignored, summary.concepts = ignored, level
    return summary


def _manifest(
    params: EmbedParams,
    encoder: Any,
    paths: list[str],
    files_per_unit: int,
    ignored: dict[str, int],
    every: list[shards.ShardResult],
) -> dict[str, Any]:
    return {
        "model": params.model,
        "model_id": params.model_id,
        "dim": encoder.dim,
        "visual_dim": encoder.visual_dim,
        "sources": paths,
        "files_per_unit": files_per_unit,
        "rows": sum(r.rows for r in every),
        "skipped": sum(len(r.skipped) for r in every),
        "concepts": params.concepts,
        "ignored": ignored,
        "metadata_dropped": sum(r.metadata_dropped for r in every),
        "shards": [r.entry() for r in every],
    }


def _level_of(manifest: dict[str, Any] | None) -> str:
    """The concepts level a manifest's shards were written at (none before there were)."""
    return "off" if manifest is None else str(manifest.get("concepts", "off"))


def _run(
    todo: list[Unit],
    params: EmbedParams,
    engine: str,
    *,
    spark: Any,
    master: str | None,
    workers: int | None,
) -> list[shards.ShardResult]:
    """Run the units' tasks on Spark or here; their shards' results."""
    if engine == "spark":
        from .session import spark_session
        from .spark_job import run_on_spark

        return run_on_spark(spark or spark_session(master), todo, params) if todo else []
    from .local import run_locally

    return run_locally(todo, params, workers=workers)


def _listed(
    manifest: dict[str, Any] | None, units: list[Unit], out: str
) -> dict[int, shards.ShardResult]:
    """Units whose shard the previous manifest lists, unchanged and still in place."""
    if manifest is None:
        return {}
    entries = {e["name"]: e for e in manifest["shards"]}
    done = {}
    for unit in units:
        entry = entries.get(unit.name)
        if entry is None or entry["unit_key"] != unit.key:
            continue
        if storage.size_of(storage.join(out, unit.name)) != entry["bytes"]:
            continue
        done[unit.index] = shards.ShardResult(status="kept", **entry)
    return done


def _summary(
    out: str, engine: str, results: list[shards.ShardResult], seconds: float
) -> EmbedSummary:
    summary = EmbedSummary(out=out, engine=engine, units=len(results), seconds=seconds)
    summary.shards = results
    for result in results:
        if result.status == "written":
            summary.written += 1
            summary.embedded += result.rows
        else:
            summary.kept += 1
        summary.rows += result.rows
        summary.metadata_dropped += result.metadata_dropped
        summary.retried += result.attempt > 0
        for uri, reason in result.skipped:
            summary.skipped.append(Skip(uri, reason))
            if result.status == "written":
                log.warning("skipped %s: %s", uri, reason)
    return summary
