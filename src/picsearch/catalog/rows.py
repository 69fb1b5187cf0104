"""Rows of the items table as Python values: what the catalog knows of a file, its
vectors as float32 matrices, and whole rows as a bulk writer gives them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DamagedLibrary
from .file import Database

__all__ = [
    "Row",
    "RowWithVectors",
    "INSERT_WHOLE_ROWS",
    "whole_rows",
    "display_path",
    "select_ids",
    "stack_vectors",
    "vector_blob",
    "parse_metadata",
]


def display_path(path_bytes: bytes) -> str:
    """A printable form of a file-system path (undecodable bytes shown as escapes)."""
    return path_bytes.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Row:
    """What the catalog knows of one file, without its vectors."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str
    width: int
    height: int
    metadata: dict[str, Any]
    #: When, where and with what it was taken ("taken", "taken_source", "camera",
    #: "lens", "gps", "place"), as PhotoInfo.fields gives them; not written by write_rows.
    photo: dict[str, Any] = field(default_factory=dict)


#: A photo as a bulk writer gives it: its row (under an id the writer chose) and the
#: float32 bytes of its joint and visual vectors.
RowWithVectors = tuple[Row, bytes, bytes | None]

#: Adds or replaces whole rows, as ``whole_rows`` gives them.
INSERT_WHOLE_ROWS = (
    "INSERT OR REPLACE INTO items (id, path_bytes, path, size, mtime_ns, hash, width, height,"
    " indexed_at, version, metadata, joint, visual) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def whole_rows(rows: Iterable[RowWithVectors], version: int) -> Iterator[tuple[Any, ...]]:
    """The values of ``INSERT_WHOLE_ROWS`` for these rows, written in generation ``version``."""
    now = time.time()
    for row, joint, visual in rows:
        yield (
            row.id,
            os.fsencode(row.path),
            row.path,
            row.size,
            row.mtime_ns,
            row.hash,
            row.width,
            row.height,
            now,
            version,
            json.dumps(row.metadata),
            joint,
            visual,
        )


def select_ids(db: Database, select: str, item_ids: Iterable[int]) -> Iterator[tuple[Any, ...]]:
    """``select ... WHERE id IN (...)``, in chunks under SQLite's parameter limit."""
    ids = [int(i) for i in item_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        yield from db.execute(f"{select} WHERE id IN ({marks})", chunk)


def stack_vectors(
    path: Path, rows: list[tuple[int, bytes | None]], dim: int, space: str
) -> np.ndarray:
    """The vectors of (id, blob) rows of the library at ``path`` as one matrix (a
    missing one: zeros); DamagedLibrary for a blob of the wrong size."""
    matrix = np.zeros((len(rows), dim), dtype=np.float32)
    for i, (item_id, blob) in enumerate(rows):
        if blob is None:
            continue
        if not isinstance(blob, bytes) or len(blob) != 4 * dim:
            size = len(blob) if isinstance(blob, bytes) else type(blob).__name__
            raise DamagedLibrary(
                path, f"the {space} vector of photo {item_id} has {size} bytes, not {4 * dim}"
            )
        matrix[i] = np.frombuffer(blob, dtype=np.float32)
    return matrix


def vector_blob(vector: np.ndarray | bytes | None) -> bytes | None:
    """A vector as stored: float32 bytes (bytes pass through: vectors copied as they are)."""
    if vector is None or isinstance(vector, bytes):
        return vector
    return np.asarray(vector, dtype=np.float32).tobytes()


def parse_metadata(path: Path, item_id: int, stored: str) -> dict[str, Any]:
    """A photo's stored metadata; DamagedLibrary when it is not a JSON object."""
    try:
        metadata = json.loads(stored)
    except (TypeError, ValueError):
        metadata = None
    if not isinstance(metadata, dict):
        raise DamagedLibrary(path, f"the metadata of photo {item_id} is not a JSON object")
    return metadata
