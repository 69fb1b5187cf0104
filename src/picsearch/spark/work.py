"""One unit of work, the same on a Spark executor and on one machine: embed a unit's
images and write its shard.

Images are decoded and preprocessed exactly as ``picsearch index`` does
(reduced-size decoding, EXIF orientation, the same reasons to skip), looked at
by the same concept detectors (blended into the default model's joint vector),
and their capture time, camera and place read the same way, so the shard holds
what the single-machine pipeline would write. The shard is streamed to a
temporary file, batch by batch, and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..concepts import DEFAULT_LEVEL, ConceptBank, Detections
from ..concepts.bank import blend_weight_for
from ..encoders import Encoder, PreparesImages, load_encoder
from ..encoders.onnx_export import THREADS_ENV
from ..images import Unusable, decode, shrink
from ..photo_info import PhotoInfo, read_photo_info
from . import shards, storage
from .records import concepts_json, photo_json
from .sources import Item, Unit, item_id, iter_items

__all__ = ["EmbedParams", "concept_bank_for", "embed_unit", "encoder_for", "encoder_loads"]

#: Called after each batch is written: ``on_batch(unit, batches_so_far)``.
BatchHook = Callable[[Unit, int], None]

# One encoder per model and process: an executor's Python worker loads the
# model on its first task and reuses it for every later task.
_ENCODERS: dict[str, Encoder] = {}
_BANKS: dict[str, ConceptBank] = {}  # the same for the concept detectors, by level
_LOADS: dict[str, int] = {}  # loads per model
_LOCK = threading.Lock()


@dataclass(frozen=True)
class EmbedParams:
    """What every task of one job shares."""

    out: str
    model: str
    model_id: str
    max_pixels: int
    batch_size: int
    on_batch: BatchHook | None = None
    concepts: str = DEFAULT_LEVEL  # the concept detectors' level, as ``index --concepts``


def encoder_for(model: str, *, threads: int | None = None) -> Encoder:
    """The process's encoder for ``model``, loaded on first use with ``threads`` threads."""
    with _LOCK:
        return _ENCODERS.get(model) or _load(model, threads)


def _load(model: str, threads: int | None) -> Encoder:
    if threads:
        # Cores the scheduler gave this task: more threads would oversubscribe
        # the executor, which runs one task per core.
        os.environ.setdefault(THREADS_ENV, str(threads))
    encoder = load_encoder(model)
    if isinstance(encoder, PreparesImages):
        encoder.prepare_images()
    _ENCODERS[model] = encoder
    _LOADS[model] = _LOADS.get(model, 0) + 1
    return encoder


def concept_bank_for(level: str, *, threads: int | None = None) -> ConceptBank | None:
    """The process's concept bank for ``level`` (None for "off"); its models load on first use."""
    if level == "off":
        return None
    with _LOCK:
        if level not in _BANKS:
            _BANKS[level] = ConceptBank(level, workers=threads or os.cpu_count() or 1)
        return _BANKS[level]


def encoder_loads() -> int:
    """The most times this process loaded any one model (1 when caching works; a worker
    that served jobs with other models before loaded each of them once)."""
    return max(_LOADS.values(), default=0)


def embed_unit(
    unit: Unit, params: EmbedParams, *, threads: int | None = None, attempt: int = 0
) -> shards.ShardResult:
    """Write the unit's shard, or keep the finished one already there."""
    started = time.perf_counter()
    target = storage.join(params.out, unit.name)
    kept = _finished(target, unit, params)
    if kept is not None:
        rows, record = kept
        dropped = int(record.get("metadata_dropped", 0))
        return _result(unit, "kept", (rows, dropped), record["skipped"], target, attempt, started)
    encoder = encoder_for(params.model, threads=threads)
    writer = _ShardWriter(unit, params, encoder, concept_bank_for(params.concepts, threads=threads))
    storage.write_atomic(target, writer.write)
    counts = (writer.rows, writer.dropped)
    return _result(unit, "written", counts, writer.skipped, target, attempt, started)


def _finished(target: str, unit: Unit, params: EmbedParams) -> tuple[int, dict[str, Any]] | None:
    found = shards.footer(target)
    if found is None:
        return None
    rows, record = found
    if record.get("unit_key") != unit.key or record.get("model_id") != params.model_id:
        return None  # made from other inputs or by another model: redo it
    if record.get("concepts", "off") != params.concepts:
        return None  # looked at by other concept detectors
    return rows, record


def _result(
    unit: Unit,
    status: str,
    counts: tuple[int, int],  # rows, broken metadata fields left out
    skipped: list[list[str]],
    target: str,
    attempt: int,
    started: float,
) -> shards.ShardResult:
    return shards.ShardResult(
        unit=unit.index,
        name=unit.name,
        unit_key=unit.key,
        source=unit.source,
        status=status,
        rows=counts[0],
        skipped=skipped,
        metadata_dropped=counts[1],
        sha256=storage.sha256_of(target),
        bytes=storage.size_of(target) or 0,
        pid=os.getpid(),
        encoder_loads=encoder_loads(),
        attempt=attempt,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _Seen:
    """An image decoded and made ready for the model, with what was read of it."""

    item: Item
    width: int
    height: int
    array: np.ndarray
    photo: PhotoInfo
    concepts: Detections | None


class _ShardWriter:
    """Decodes a unit's images, embeds them in batches and streams them to Parquet."""

    def __init__(
        self, unit: Unit, params: EmbedParams, encoder: Encoder, bank: ConceptBank | None
    ) -> None:
        self.unit, self.params, self.encoder, self.bank = unit, params, encoder, bank
        self.schema = shards.shard_schema(encoder.dim, encoder.visual_dim)
        self.rows = 0
        self.dropped = 0  # broken metadata fields left out
        self.skipped: list[list[str]] = []
        self._pending: list[_Seen] = []
        self._batches = 0

    def write(self, stream: Any) -> None:
        pq = shards.parquet()
        with pq.ParquetWriter(stream, self.schema, compression="zstd") as writer:
            for item in iter_items(self.unit):
                self._take(item, writer)
            self._flush(writer)
            writer.add_key_value_metadata(shards.footer_bytes(self._footer()))

    def _footer(self) -> dict[str, Any]:
        return {
            "model": self.params.model,
            "model_id": self.params.model_id,
            "dim": self.encoder.dim,
            "visual_dim": self.encoder.visual_dim,
            "unit": self.unit.index,
            "unit_key": self.unit.key,
            "skipped": self.skipped,
            "concepts": self.params.concepts,
            "metadata_dropped": self.dropped,
        }

    def _take(self, item: Item, writer: Any) -> None:
        if item.problem is not None or item.data is None:
            self.skipped.append([item.uri, item.problem or "unreadable"])
            return
        try:
            seen = self._look_at(item, item.data)
        except Unusable as exc:
            self.skipped.append([item.uri, str(exc)])
            return
        self._pending.append(seen)
        if len(self._pending) >= self.params.batch_size:
            self._flush(writer)

    def _look_at(self, item: Item, data: bytes) -> _Seen:
        """Decode once, at the size the detectors need, then shrink for the model."""
        model_side = self.encoder.decode_size
        side = max(model_side, self.bank.decode_side) if self.bank else model_side
        image, width, height = decode(data, short_side=side, max_pixels=self.params.max_pixels)
        found = self.bank.detect(image, label=item.uri) if self.bank else None
        array = self.encoder.preprocess(shrink(image, model_side))
        return _Seen(item, width, height, array, read_photo_info(data, item.mtime_ns), found)

    def _flush(self, writer: Any) -> None:
        if not self._pending:
            return
        pa = shards.pyarrow()
        pending, items = self._pending, [p.item for p in self._pending]
        embedded = self.encoder.embed_arrays(np.stack([p.array for p in pending]))
        joint = embedded.joint
        if self.bank is not None:
            found = [p.concepts for p in pending]
            weight = blend_weight_for(self.encoder)
            joint = self.bank.blend(joint, found, self.encoder.embed_texts, weight)
        columns = {
            "id": pa.array([item_id(self.unit.index, i.position) for i in items], pa.int64()),
            "uri": pa.array([i.uri for i in items], pa.string()),
            "size": pa.array([i.size for i in items], pa.int64()),
            "mtime_ns": pa.array([i.mtime_ns for i in items], pa.int64()),
            # The catalog's content hash: SHA-256 of the bytes, first 128 bits.
            "hash": pa.array([hashlib.sha256(i.data or b"").hexdigest()[:32] for i in items]),
            "width": pa.array([p.width for p in pending], pa.int32()),
            "height": pa.array([p.height for p in pending], pa.int32()),
            "caption": pa.array([i.caption for i in items], pa.string()),
            "metadata": pa.array([json.dumps(i.metadata or {}) for i in items], pa.string()),
            "photo": pa.array([photo_json(p.photo) for p in pending], pa.string()),
            "concepts": pa.array([concepts_json(p.concepts) for p in pending], pa.string()),
            "joint": shards.vector_column(joint),
        }
        if embedded.visual is not None:
            columns["visual"] = shards.vector_column(embedded.visual)
        writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))
        self.rows += len(items)
        self.dropped += sum(len(p.photo.dropped) for p in pending)
        self._pending = []
        self._batches += 1
        if self.params.on_batch is not None:
            self.params.on_batch(self.unit, self._batches)
