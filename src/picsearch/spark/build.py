"""``picsearch build``: a library (catalog + ANN index) from embedding shards.

The driver writes the catalog (one SQLite file: one writer) shard by shard,
keeping the ids, the re-ranking copy and a random sample of each space.
A space small enough for exact search (or forced to an engine whose indexes
do not merge) is indexed here as ``picsearch index`` would; a large one is
built by :mod:`.index_parts` with one task per shard, on Spark or here. The
result is the layout ``picsearch.open(db)`` and ``picsearch search`` read.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import ann
from ..ann.auto import TUNE_QUERIES, candidate_engines, default_exact_below
from ..ann.store import make_store
from ..catalog import Catalog
from ..errors import InvalidInput
from ..ingest import IndexSummary
from ..vector_index import SpaceIndex
from . import index_parts, shards, storage
from .catalog_rows import insert_rows
from .tuning import finish_space

__all__ = ["BuildSummary", "build"]

log = logging.getLogger("picsearch")


@dataclass
class BuildSummary:
    """What one ``build`` run did."""

    db: str
    items: int = 0
    shards: int = 0
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog_seconds: float = 0.0  # writing the catalog (one process: SQLite)
    seconds: float = 0.0
    #: Files of types picsearch does not read, by extension, as ``embed`` counted them.
    ignored: dict[str, int] = field(default_factory=dict)
    metadata_dropped: int = 0  # broken metadata fields left out (photos kept)

    def __str__(self) -> str:
        spaces = "; ".join(
            f"{name}: {info['backend']}"
            + (f" ({info['how']}, recall@10 {info['recall@10']:.3f})" if "how" in info else "")
            for name, info in self.spaces.items()
        )
        counted = IndexSummary(ignored=self.ignored, metadata_dropped=self.metadata_dropped)
        return (
            f"{self.items} items from {self.shards} shards in {self.seconds:.1f} s; {spaces}"
            + counted.ignored_text()
            + counted.dropped_text()
        )


def build(
    embeddings: str | os.PathLike[str],
    db: str | os.PathLike[str],
    *,
    engine: str = "local",
    spark: Any = None,
    master: str | None = None,
    index: str | ann.IndexOptions = "auto",
) -> BuildSummary:
    """Make (or bring up to date) the library ``db`` from the shards under ``embeddings``."""
    if engine not in ("local", "spark"):
        raise InvalidInput(f"engine={engine!r} must be one of local, spark")
    started = time.perf_counter()
    source = os.fspath(embeddings)
    requested = ann.parse_options(index)
    manifest = shards.read_manifest(source)
    catalog = Catalog(Path(db).expanduser(), create=True)
    try:
        _check_target(catalog, source)
        catalog.bind_model(
            manifest["model"], manifest["model_id"], manifest["dim"], manifest["visual_dim"]
        )
        dims = {"joint": manifest["dim"], "visual": manifest["visual_dim"]}
        dims = {space: int(dim) for space, dim in dims.items() if dim}
        plans = {space: _plan(manifest["rows"], dim, requested) for space, dim in dims.items()}
        # Later ``index`` runs on the library use the level its photos were looked at with.
        catalog.set_meta("concepts", str(manifest.get("concepts", "off")))
        filled = _fill(catalog, source, manifest, plans, requested.seed)
        summary = BuildSummary(str(catalog.path), catalog.count(), len(manifest["shards"]))
        summary.ignored = dict(manifest.get("ignored", {}))
        summary.metadata_dropped = filled.metadata_dropped
        summary.catalog_seconds = time.perf_counter() - started
        folder = Path(f"{catalog.path}.index")
        for space, dim in dims.items():
            if plans[space] is None:
                summary.spaces[space] = _single(catalog, folder, space, dim, requested)
        distributed = {space: opts for space, opts in plans.items() if opts is not None}
        if distributed:
            parts = _parts(source, manifest, filled, distributed, engine, spark, master)
            for space, options in distributed.items():
                summary.spaces[space] = finish_space(
                    catalog, folder, space, options, requested, filled, parts
                )
    finally:
        catalog.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _check_target(catalog: Catalog, source: str) -> None:
    """A library is built from one embeddings folder: refuse to mix in another's ids."""
    where = storage.locate(source)
    name = where.uri(where.path)
    stored = catalog.get_meta("embeddings")
    if catalog.count() and stored != name:
        raise InvalidInput(
            f"{catalog.path} already holds photos that were not built from {source}: "
            "build into a new --db"
        )
    catalog.set_meta("embeddings", name)


def _plan(n: int, dim: int, requested: ann.IndexOptions) -> ann.IndexOptions | None:
    """FAISS options when the space is built shard-parallel, None to build it here."""
    if requested.backend == "auto":
        threshold = requested.exact_below
        if n < (default_exact_below(dim) if threshold is None else threshold):
            return None
        if "faiss" not in candidate_engines():
            return None  # auto then picks what is installed, or exact
    elif requested.backend != "faiss" or requested.kind != "ivf":
        return None  # exact, ScaNN and HNSW indexes are not merged from parts
    options = index_parts.faiss_options(n, dim, requested)
    return options if n >= index_parts.min_train(options) else None


@dataclass
class Filled:
    """What the catalog pass kept for the index build of each shard-parallel space."""

    n: int
    generation: int
    ids: np.ndarray
    offsets: list[int]
    stores: dict[str, Any]  # space -> the re-ranking copy (int8 by default)
    samples: dict[str, np.ndarray]  # space -> training vectors
    queries: dict[str, np.ndarray]  # space -> tuning queries (vectors of the collection)
    query_ids: np.ndarray
    metadata_dropped: int = 0  # broken metadata fields the photos left out


def _fill(
    catalog: Catalog,
    source: str,
    manifest: dict[str, Any],
    plans: dict[str, ann.IndexOptions | None],
    seed: int,
) -> Filled:
    """Write every shard's rows; keep ids, re-ranking copies, the sample and the queries."""
    n = int(manifest["rows"])
    rng = np.random.default_rng(seed)
    parallel = {space: opts for space, opts in plans.items() if opts is not None}
    size = max((index_parts.sample_size(n, o) for o in parallel.values()), default=0)
    sample_at = np.sort(rng.choice(n, size=size, replace=False)) if parallel else np.empty(0, int)
    query_at = (
        np.sort(rng.choice(n, size=min(n, TUNE_QUERIES), replace=False))
        if parallel
        else np.empty(0, int)
    )
    stores = {s: make_store(o.reorder_dtype, _dim(manifest, s)) for s, o in parallel.items()}
    picked: dict[str, list[np.ndarray]] = {s: [] for s in parallel}
    asked: dict[str, list[np.ndarray]] = {s: [] for s in parallel}
    ids, offsets, offset = [], [], 0
    version = catalog.bump_generation()
    dropped = 0
    for entry, table in shards.iter_shards(source, manifest):
        rows = table.num_rows
        dropped += insert_rows(catalog, table, version)
        ids.append(table.column("id").to_numpy())
        offsets.append(offset)
        take = _within(sample_at, offset, rows)
        ask = _within(query_at, offset, rows)
        for space in parallel:
            vectors = shards.column_vectors(table, space)
            stores[space].append(vectors)
            picked[space].append(vectors[take])
            asked[space].append(vectors[ask])
        offset += rows
        log.info("catalog: %s (%d rows)", entry["name"], rows)
    all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
    return Filled(
        n=offset,
        generation=catalog.generation,
        ids=all_ids,
        offsets=offsets,
        stores=stores,
        samples={s: _stack(picked[s], _dim(manifest, s)) for s in parallel},
        queries={s: _stack(asked[s], _dim(manifest, s)) for s in parallel},
        query_ids=all_ids[query_at.astype(np.int64)],
        metadata_dropped=dropped,
    )


def _dim(manifest: dict[str, Any], space: str) -> int:
    return int(manifest["dim"] if space == "joint" else manifest["visual_dim"])


def _within(positions: np.ndarray, offset: int, rows: int) -> np.ndarray:
    """Global positions inside [offset, offset + rows), made local to the shard."""
    low, high = np.searchsorted(positions, [offset, offset + rows])
    return positions[low:high] - offset


def _stack(chunks: list[np.ndarray], dim: int) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.empty((0, dim), np.float32)


def _single(
    catalog: Catalog, folder: Path, space: str, dim: int, requested: ann.IndexOptions
) -> dict[str, Any]:
    """Index a space here, from the catalog, exactly as the library does."""
    (folder / f"{space}.json").unlink(missing_ok=True)  # build afresh, not from an old index
    info = SpaceIndex(folder, space, dim, requested).maintain(catalog)
    return {"backend": info["backend"], "size": info["size"]}


def _parts(
    source: str,
    manifest: dict[str, Any],
    filled: Filled,
    plans: dict[str, ann.IndexOptions],
    engine: str,
    spark: Any,
    master: str | None,
) -> dict[str, Any]:
    """Train each space on its sample, then run one task per shard; returns what to merge."""
    scratch = storage.join(source, f"_index-build-{uuid.uuid4().hex[:12]}")
    trained, train_seconds = {}, {}
    for space, options in plans.items():
        started = time.perf_counter()
        trained[space] = index_parts.train(filled.samples[space], options)
        log.info("%s: trained on %d vectors", space, len(filled.samples[space]))
        _put(storage.join(scratch, f"{space}.faiss"), trained[space])
        _put(storage.join(scratch, f"{space}.queries.npy"), _npy_bytes(filled.queries[space]))
        train_seconds[space] = time.perf_counter() - started
    payloads = [
        json.dumps(
            {
                "embeddings": source,
                "entry": entry,
                "offset": offset,
                "scratch": scratch,
                "spaces": list(plans),
            }
        )
        for entry, offset in zip(manifest["shards"], filled.offsets, strict=True)
        if entry["rows"]
    ]
    started = time.perf_counter()
    try:
        uris = _run(payloads, engine, spark, master)
        added = time.perf_counter()
        merged = {}
        for space in plans:
            merged[space] = index_parts.merge_parts(
                space, trained[space], uris, len(filled.query_ids)
            )
    finally:
        storage.delete_tree(scratch)
    return {
        "merged": merged,
        "train_seconds": train_seconds,
        "add_seconds": added - started,
        "merge_seconds": time.perf_counter() - added,
        "shards": len(payloads),
        "engine": engine,
    }


def _run(payloads: list[str], engine: str, spark: Any, master: str | None) -> list[str]:
    if engine == "local":
        return [index_parts.shard_part(payload) for payload in payloads]
    from .session import spark_session
    from .spark_job import JobFailed, describe_failure

    session = spark or spark_session(master)
    rdd = session.sparkContext.parallelize(payloads, max(1, len(payloads)))
    try:
        return rdd.map(index_parts.shard_part).collect()
    except Exception as exc:  # Py4J and PySpark errors: the cause is in the message
        raise JobFailed(f"the Spark index job failed ({describe_failure(exc)})") from None


def _put(uri: str, data: bytes) -> None:
    storage.write_atomic(uri, lambda stream: stream.write(data))


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
