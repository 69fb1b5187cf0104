"""What a task read of each photo besides its vectors, as JSON in the shard's columns.

``photo``: when, where and with what the photo was taken (``PhotoInfo``, with the
broken fields it left out); ``concepts``: what the concept bank's detectors found
(``Detections``). The build writes both into the catalog, as indexing does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from ..concepts import Concept, Detections
from ..photo_info import PhotoInfo

__all__ = ["photo_json", "photo_from_json", "concepts_json", "concepts_from_json"]


def photo_json(info: PhotoInfo) -> str:
    fields = dataclasses.asdict(info)
    return json.dumps({**fields, "taken": info.taken.isoformat()})


def photo_from_json(text: str | None) -> PhotoInfo | None:
    if not text:
        return None
    fields: dict[str, Any] = json.loads(text)
    fields["taken"] = dt.datetime.fromisoformat(fields["taken"])
    fields["dropped"] = tuple(fields.get("dropped") or ())
    return PhotoInfo(**fields)


def concepts_json(found: Detections | None) -> str | None:
    """None when no detector looked at the photo (``--concepts off``)."""
    return None if found is None else json.dumps(dataclasses.asdict(found))


def concepts_from_json(text: str | None) -> Detections | None:
    if not text:
        return None
    fields: dict[str, Any] = json.loads(text)
    return Detections(
        concepts=tuple(Concept(**concept) for concept in fields["concepts"]),
        text=str(fields["text"]),
        detectors=tuple(fields["detectors"]),
    )
