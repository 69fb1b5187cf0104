"""Files that are one photo with another (a RAW beside its JPEG, a Live Photo's movie
beside its HEIC): recorded in the photo's metadata as ``"linked": [path, ...]``."""

from __future__ import annotations

import json
import os

from ..catalog import Catalog

__all__ = ["LINKED", "record_links"]

#: The metadata key that lists a photo's linked files.
LINKED = "linked"


def record_links(catalog: Catalog, links: dict[bytes, tuple[str, ...]]) -> set[bytes]:
    """Store each photo's linked files in its metadata, keeping every other field.

    Returns the linked files whose picture is in the catalog: a RAW indexed alone
    before its JPEG appeared is now part of that photo. Photos not in the catalog
    (skipped) are left out, and so their linked files stay photos of their own.
    """
    ids = {path: catalog.concepts.item_id(path) for path in links}
    rows = catalog.rows(item_id for item_id in ids.values() if item_id is not None)
    updates: list[tuple[str, int]] = []
    absorbed: set[bytes] = set()
    for path_bytes, item_id in ids.items():
        if item_id is None or item_id not in rows:
            continue
        absorbed.update(os.fsencode(path) for path in links[path_bytes])
        metadata = dict(rows[item_id].metadata)
        linked = list(links[path_bytes])
        if metadata.get(LINKED) != linked:
            metadata[LINKED] = linked
            updates.append((json.dumps(metadata), item_id))
    if updates:
        with catalog.transaction():
            catalog.set_metadata(updates)
    return absorbed
