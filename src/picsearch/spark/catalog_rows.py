"""Rows from shards into a library's catalog, under the ids the shards give them.

``Catalog.upsert`` lets SQLite choose ids and bumps the generation per row;
a build writes millions of rows whose ids are fixed by the embeddings, so
it writes them with ``Catalog.write_rows``, a shard per transaction and one
generation (``Catalog.bump_generation``) for the whole build. What the tasks read
of each photo (capture time, camera, place; the concepts) follows in the catalog's
photo and concept tables, as ``picsearch index`` writes them.
"""

from __future__ import annotations

import json
from typing import Any

from ..catalog import Catalog, Row
from .records import concepts_from_json, photo_from_json
from .shards import column_vectors

__all__ = ["insert_rows"]

_FACTS = ("id", "uri", "size", "mtime_ns", "hash", "width", "height", "caption", "metadata")


def insert_rows(catalog: Catalog, table: Any, version: int) -> int:
    """Add or replace the rows of one shard (a pyarrow Table); returns how many broken
    metadata fields its photos left out."""
    if not table.num_rows:
        return 0
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
    return _insert_photos(catalog, table)


def _insert_photos(catalog: Catalog, table: Any) -> int:
    """Each photo's capture time, camera and place, and its concepts (shards written
    before these columns existed have none: their photos are known by file time)."""
    names = table.column_names
    ids = table.column("id").to_pylist()
    photos = table.column("photo").to_pylist() if "photo" in names else [None] * len(ids)
    concepts = table.column("concepts").to_pylist() if "concepts" in names else [None] * len(ids)
    dropped = 0
    with catalog.transaction():
        catalog.concepts.replace_many(
            (item_id, concepts_from_json(text)) for item_id, text in zip(ids, concepts, strict=True)
        )
        for item_id, text in zip(ids, photos, strict=True):
            photo = photo_from_json(text)
            if photo is not None:
                catalog.photos.replace(item_id, photo)
                dropped += len(photo.dropped)
    return dropped
