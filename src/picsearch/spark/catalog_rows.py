"""Rows from shards into a library's catalog, under the ids the shards give them.

``Catalog.upsert`` lets SQLite choose ids and bumps the generation per row;
a build writes millions of rows whose ids are fixed by the embeddings, so
it writes them here, on the catalog's own connection, a shard per
transaction and one generation for the whole build.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..catalog import Catalog
from .shards import column_vectors

__all__ = ["bump_generation", "insert_rows"]

_FACTS = ("id", "uri", "size", "mtime_ns", "hash", "width", "height", "caption", "metadata")
_INSERT = (
    "INSERT OR REPLACE INTO items (id, path_bytes, path, size, mtime_ns, hash, width, height,"
    " indexed_at, version, metadata, joint, visual) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _connection(catalog: Catalog) -> Any:
    return catalog._db  # the catalog's SQLite connection (WAL, autocommit)


def bump_generation(catalog: Catalog) -> int:
    """A new catalog generation for the rows about to be written; returns it."""
    _connection(catalog).execute(
        "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
        "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )
    return catalog.generation


def insert_rows(catalog: Catalog, table: Any, version: int) -> None:
    """Add or replace the rows of one shard (a pyarrow Table) in one transaction."""
    if not table.num_rows:
        return
    columns = table.select(list(_FACTS)).to_pydict()
    joint = column_vectors(table, "joint")
    visual = column_vectors(table, "visual") if "visual" in table.column_names else None
    now = time.time()
    rows = []
    for i, uri in enumerate(columns["uri"]):
        metadata = json.loads(columns["metadata"][i] or "{}")
        if columns["caption"][i] is not None:
            metadata["caption"] = columns["caption"][i]
        rows.append(
            (
                columns["id"][i],
                os.fsencode(uri),
                uri,
                columns["size"][i],
                columns["mtime_ns"][i],
                columns["hash"][i],
                columns["width"][i],
                columns["height"][i],
                now,
                version,
                json.dumps(metadata),
                joint[i].tobytes(),
                None if visual is None else visual[i].tobytes(),
            )
        )
    with catalog.transaction():
        _connection(catalog).executemany(_INSERT, rows)
