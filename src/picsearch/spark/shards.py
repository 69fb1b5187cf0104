"""Parquet shards of embeddings and the manifest that lists them.

A shard holds one row per image: ``id``, ``uri``, file facts, ``caption``,
``metadata`` (JSON), ``photo`` and ``concepts`` (JSON, see :mod:`.records`),
and the embeddings as fixed-size float lists (``joint``, and ``visual`` when
the model has an image-only space). Its footer records the model, the
concepts level, the unit it came from and the items skipped, so a re-run can
tell a finished shard from a stale one without a manifest. The manifest
(``manifest.json``) names the model, the dimensions and every shard with its
row count and SHA-256; readers trust only the shards it lists."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from ..errors import LibraryError, ModelMismatch, require
from . import storage

__all__ = [
    "MANIFEST",
    "ShardResult",
    "pyarrow",
    "parquet",
    "shard_schema",
    "vector_column",
    "column_vectors",
    "footer",
    "footer_bytes",
    "read_manifest",
    "check_model",
    "write_manifest",
    "read_shard",
    "iter_shards",
]

MANIFEST = "manifest.json"
FORMAT = "picsearch-embeddings"
VERSION = 1
FOOTER_KEY = b"picsearch"


def pyarrow() -> Any:
    """The pyarrow module (MissingDependency naming the extra when it is not installed)."""
    return require("pyarrow", package="pyarrow", extra="spark", purpose="embedding shards")


def parquet() -> Any:
    """The pyarrow.parquet module."""
    return require("pyarrow.parquet", package="pyarrow", extra="spark", purpose="embedding shards")


@dataclass(frozen=True)
class ShardResult:
    """What one unit's task did: wrote its shard, or kept the one already there."""

    unit: int
    name: str
    unit_key: str
    source: str
    status: str  # "written" | "kept"
    rows: int
    skipped: list[list[str]]  # [uri, reason] of each item left out
    sha256: str
    bytes: int
    pid: int = 0
    encoder_loads: int = 0
    attempt: int = 0
    seconds: float = 0.0
    metadata_dropped: int = 0  # broken metadata fields left out (photos kept)

    def entry(self) -> dict[str, Any]:
        """The shard's line in the manifest."""
        keys = (
            *("name", "unit", "unit_key", "source", "rows", "skipped", "sha256", "bytes"),
            "metadata_dropped",
        )
        return {key: getattr(self, key) for key in keys}


def shard_schema(dim: int, visual_dim: int | None) -> Any:
    pa = pyarrow()
    fields = [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("hash", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("caption", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("photo", pa.string()),  # JSON: capture time, camera, place (records.py)
        pa.field("concepts", pa.string()),  # JSON: what the concept detectors found
        pa.field("joint", pa.list_(pa.float32(), dim), nullable=False),
    ]
    if visual_dim:
        fields.append(pa.field("visual", pa.list_(pa.float32(), visual_dim)))
    return pa.schema(fields)


def vector_column(vectors: np.ndarray) -> Any:
    """An (n, dim) array as a fixed-size list column, without copying row by row."""
    pa = pyarrow()
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def column_vectors(table: Any, name: str) -> np.ndarray:
    """A fixed-size list column back to an (n, dim) float32 array."""
    column = table.column(name).combine_chunks()
    dim = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)


def footer(uri: str) -> tuple[int, dict[str, Any]] | None:
    """(rows, picsearch footer) of a finished shard, or None if it is missing or unreadable."""
    try:
        with storage.open_file(uri) as handle:
            meta = parquet().ParquetFile(handle).metadata
        return meta.num_rows, json.loads(meta.metadata[FOOTER_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    except Exception as exc:  # pyarrow's ArrowInvalid for a damaged file
        if type(exc).__module__.startswith("pyarrow"):
            return None
        raise


def footer_bytes(record: dict[str, Any]) -> dict[bytes, bytes]:
    return {FOOTER_KEY: json.dumps(record).encode()}


# -- the manifest --------------------------------------------------------------
@overload
def read_manifest(folder: str, *, missing_ok: Literal[False] = False) -> dict[str, Any]: ...
@overload
def read_manifest(folder: str, *, missing_ok: bool) -> dict[str, Any] | None: ...
def read_manifest(folder: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
    """The manifest of an embeddings folder (``missing_ok``: None when there is none)."""
    uri = storage.join(folder, MANIFEST)
    try:
        manifest = json.loads(storage.read_bytes(uri))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise LibraryError(
            f"no embeddings at {folder} (no {MANIFEST}): "
            f"run 'picsearch embed SOURCE --out {folder}' first"
        ) from None
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{uri} is not a readable manifest ({exc})") from None
    if manifest.get("format") != FORMAT or int(manifest.get("version", 0)) > VERSION:
        raise LibraryError(f"{uri} is not a picsearch embeddings manifest of a known version")
    return manifest


def check_model(manifest: dict[str, Any] | None, folder: str, spec: str, model_id: str) -> None:
    """Refuse to mix the vectors of two models in one embeddings folder."""
    if manifest is not None and manifest["model_id"] != model_id:
        raise ModelMismatch(
            f"{folder} holds embeddings of model '{manifest['model']}' ({manifest['model_id']}), "
            f"not '{spec}' ({model_id}): pass --model {manifest['model']} or use another --out"
        )


def write_manifest(folder: str, manifest: dict[str, Any]) -> str:
    uri = storage.join(folder, MANIFEST)
    body = json.dumps({"format": FORMAT, "version": VERSION, **manifest}, indent=1).encode()
    storage.write_atomic(uri, lambda stream: stream.write(body))
    return uri


def read_shard(folder: str, entry: dict[str, Any]) -> Any:
    """A shard listed in the manifest as a pyarrow Table, after checking its SHA-256."""
    import hashlib

    uri = storage.join(folder, entry["name"])
    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError:
        raise LibraryError(f"{uri} is listed in the manifest but missing") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise LibraryError(f"{uri} does not match its checksum: re-run 'picsearch embed'")
    return parquet().read_table(io.BytesIO(data))


def iter_shards(folder: str, manifest: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    for entry in manifest["shards"]:
        yield entry, read_shard(folder, entry)
