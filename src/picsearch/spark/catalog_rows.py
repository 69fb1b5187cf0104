"""Rows from shards into a library's catalog, under the ids the shards give them.

``Catalog.upsert`` lets SQLite choose ids and bumps the generation per row;
a build writes millions of rows whose ids are fixed by the embeddings, so
it writes them with ``Catalog.write_rows``, a shard per transaction and one
generation (``Catalog.bump_generation``) for the whole build.
"""

from __future__ import annotations

import json
from typing import Any

from ..catalog import Catalog, Row
from .shards import column_vectors

__all__ = ["insert_rows"]

_FACTS = ("id", "uri", "size", "mtime_ns", "hash", "width", "height", "caption", "metadata")


def insert_rows(catalog: Catalog, table: Any, version: int) -> None:
    """Add or replace the rows of one shard (a pyarrow Table) in one transaction."""
    if not table.num_rows:
        return
    columns = table.select(list(_FACTS)).to_pydict()
    joint = column_vectors(table, "joint")
    visual = column_vectors(table, "visual") if "visual" in table.column_names else None
    rows = []
    for i, uri in enumerate(columns["uri"]):
        metadata = json.loads(columns["metadata"][i] or "{}")
        if columns["caption"][i] is not None:
            metadata["caption"] = columns["caption"][i]
        row = Row(
            id=columns["id"][i],
            path=uri,
            size=columns["size"][i],
            mtime_ns=columns["mtime_ns"][i],
            hash=columns["hash"][i],
            width=columns["width"][i],
            height=columns["height"][i],
            metadata=metadata,
        )
        rows.append((row, joint[i].tobytes(), None if visual is None else visual[i].tobytes()))
    catalog.write_rows(rows, version=version)
