"""What a searcher is opened with and what it answers: options, neighbours, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..images import DEFAULT_MAX_PIXELS
from ..library import Hit

__all__ = ["SearcherOptions", "NearestNeighbor", "SearchResult"]


@dataclass(frozen=True, kw_only=True)
class SearcherOptions:
    """max_results: neighbours per query; threads: ONNX Runtime threads (None: all cores)."""

    max_results: int = 10
    threads: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        for name in ("max_results", "max_pixels") + (("threads",) if self.threads else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a whole number of at least 1, not {value!r}")


@dataclass(frozen=True)
class NearestNeighbor:
    """One result. ``score`` is the cosine similarity (plus the full-text bonus, as in
    ``Library.search``); ``distance`` = 1 - score. ``metadata`` holds ``path``, the
    file's fields and the application's; ``concepts`` and ``text`` what was seen in
    the photo (empty for files exported before searchers kept them)."""

    id: int
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, float] = field(default_factory=dict)
    text: str = ""
    #: A text query's result under the model's weak-match cutoff: close, not a good match.
    weak: bool = False

    @property
    def path(self) -> str:
        return str(self.metadata.get("path", ""))

    @property
    def distance(self) -> float:
        return round(1.0 - self.score, 6)

    def to_hit(self, rank: int) -> Hit:
        """This result as the library's Hit: the one shape for results, wherever found."""
        metadata = {key: value for key, value in self.metadata.items() if key != "path"}
        return Hit(
            rank,
            self.id,
            self.path,
            self.score,
            metadata,
            dict(self.concepts),
            self.text,
            weak=self.weak,
        )


@dataclass(frozen=True)
class SearchResult:
    nearest_neighbors: list[NearestNeighbor]

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.nearest_neighbors]

    def __len__(self) -> int:
        return len(self.nearest_neighbors)

    def hits(self) -> list[Hit]:
        return [n.to_hit(rank) for rank, n in enumerate(self.nearest_neighbors, 1)]

    def to_list(self) -> list[dict[str, Any]]:
        """The results as ``Library.search`` hits' dicts: rank, id, path, score, metadata,
        concepts, text."""
        return [hit.to_dict() for hit in self.hits()]
