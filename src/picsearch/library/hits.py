"""What a library gives back: search hits, stored photos, and a summary of itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..catalog import Row
from ..display import path_text

__all__ = ["Hit", "Item", "LibraryInfo", "hit_of", "row_metadata", "judged", "no_good_match"]


@dataclass(frozen=True)
class _Photo:
    """What hits and items share: as dicts, their path is printable."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = path_text(data["path"])
        return data


@dataclass(frozen=True)
class Hit(_Photo):
    """One search result. ``score`` is a cosine similarity: higher is closer (plus the
    full-text bonus when the query's words are in the photo, see ``Library.search``).

    ``concepts`` maps what the concept bank saw in the photo to its confidence
    ("person": 0.91, "color:red": 0.8, ...); ``text`` is the words read in it.
    ``weak`` is true when a text query's score is under the model's calibrated
    weak-match cutoff: the closest photos, but not good matches.
    """

    rank: int
    id: int
    path: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, float] = field(default_factory=dict)
    text: str = ""
    weak: bool = False


@dataclass(frozen=True)
class Item(_Photo):
    """One photo of the library, as stored: its id, path and metadata."""

    id: int
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LibraryInfo:
    path: str
    items: int
    model: str | None
    model_id: str | None
    dims: dict[str, int | None]
    schema_version: int
    size_bytes: int
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_metadata(row: Row) -> dict[str, Any]:
    """A photo's metadata as hits carry it: its size and file time, when and where it was
    taken, then the fields an application attached (which win)."""
    sizes = {"width": row.width, "height": row.height, "size": row.size}
    return {**sizes, "mtime": row.mtime_ns / 1e9, **row.photo, **row.metadata}


def hit_of(rank: int, row: Row, score: float) -> Hit:
    """The hit of a stored photo at this rank and score."""
    return Hit(
        rank=rank, id=row.id, path=row.path, score=round(score, 6), metadata=row_metadata(row)
    )


def judged(hits: list[Hit], *, cutoff: float | None, min_score: float | None) -> list[Hit]:
    """Hits under ``min_score`` dropped, the rest flagged weak under ``cutoff`` (the
    model's weak-match cutoff; None flags none). Ranks are renumbered."""
    kept = [hit for hit in hits if min_score is None or hit.score >= min_score]
    return [
        replace(hit, rank=rank, weak=cutoff is not None and hit.score < cutoff)
        for rank, hit in enumerate(kept, 1)
    ]


def no_good_match(hits: list[Hit]) -> bool:
    """Whether a search found photos but none is a good match (all are weak)."""
    return bool(hits) and all(hit.weak for hit in hits)
