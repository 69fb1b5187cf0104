"""Metadata that applications attach to photos when they index them from Python."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..catalog import Catalog
from ..errors import InvalidInput

__all__ = ["MetadataSource", "attach_metadata"]

log = logging.getLogger(__name__)

#: Per-photo metadata: a mapping from path to dict, or a function of the path.
MetadataSource = (
    Mapping[str | os.PathLike[str], Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None]
)


def attach_metadata(
    catalog: Catalog, roots: Iterable[str | os.PathLike[str]], source: MetadataSource
) -> int:
    """Store ``source``'s dict for every cataloged photo under ``roots``; returns how many."""
    lookup, unused = _lookup(source)
    prefixes = [os.fsencode(_absolute(root)) for root in roots]
    updates = []
    for item_id, path_bytes in catalog.iter_paths():
        if not any(_under(path_bytes, prefix) for prefix in prefixes):
            continue
        path = os.fsdecode(path_bytes)
        fields = lookup(path)
        if fields is not None:
            updates.append((_as_json(fields, path), item_id))
            unused.discard(path)
    with catalog.transaction():
        catalog.set_metadata(updates)
    if unused:
        shown = ", ".join(sorted(unused)[:3])
        log.warning("metadata given for %d paths that were not indexed: %s", len(unused), shown)
    return len(updates)


def _lookup(source: MetadataSource) -> tuple[Callable[[str], Any], set[str]]:
    if callable(source):
        return source, set()
    if not isinstance(source, Mapping):
        raise InvalidInput(
            "metadata must be a dict of path → dict or a function of the path, "
            f"not {type(source).__name__}"
        )
    by_path = {_absolute(path): fields for path, fields in source.items()}
    return by_path.get, set(by_path)


def _as_json(fields: object, path: str) -> str:
    if not isinstance(fields, Mapping):
        raise InvalidInput(f"metadata for {path} must be a dict, not {type(fields).__name__}")
    try:
        return json.dumps(dict(fields), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata for {path} is not JSON-serialisable: {exc}") from None


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _under(path_bytes: bytes, prefix: bytes) -> bool:
    return path_bytes == prefix or path_bytes.startswith(prefix.rstrip(b"/") + b"/")
