"""Search filters on stored concepts: people, text, black and white, a colour."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInput
from .pixels import COLOUR_NAMES
from .store import ConceptStore

__all__ = ["Filters", "MIN_CONFIDENCE"]

#: A stored concept counts for a filter from this confidence on.
MIN_CONFIDENCE = 0.5
# Filter → (concept name, the detectors that can see it, the --concepts level that runs them).
_SEEN_BY = {
    "person": (("faces", "objects"), "fast"),
    "text": (("ocr",), "full"),
    "bw": (("pixels",), "fast"),
    "color": (("pixels",), "fast"),
}


@dataclass(frozen=True)
class Filters:
    """``True``: only photos with the concept; ``False``: only photos without; None: either."""

    people: bool | None = None
    has_text: bool | None = None
    bw: bool | None = None
    color: str | None = None

    def __post_init__(self) -> None:
        if self.color is not None and self.color.strip().lower() not in COLOUR_NAMES:
            raise InvalidInput(
                f"unknown colour {self.color!r}: use one of {', '.join(COLOUR_NAMES)}"
            )

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.people, self.has_text, self.bw, self.color))

    def _conditions(self) -> list[tuple[str, bool, str]]:
        """(concept name, wanted, kind) for each filter given."""
        conditions = []
        for name, wanted in (("person", self.people), ("text", self.has_text), ("bw", self.bw)):
            if wanted is not None:
                conditions.append((name, bool(wanted), name))
        if self.color is not None:
            conditions.append((f"color:{self.color.strip().lower()}", True, "color"))
        return conditions

    def ids(self, store: ConceptStore) -> np.ndarray:
        """Ids of the photos that pass every filter."""
        sets = []
        for name, wanted, kind in self._conditions():
            detectors, level = _SEEN_BY[kind]
            seen = functools.reduce(np.union1d, [store.ids_seen_by(d) for d in detectors])
            if not len(seen):
                raise InvalidInput(
                    f"no photo of this library was looked at for {kind}: index it with "
                    f"concepts '{level}' or more (picsearch index FOLDER --concepts {level})"
                )
            having = store.ids_with(name, MIN_CONFIDENCE)
            sets.append(having if wanted else np.setdiff1d(seen, having))
        return functools.reduce(np.intersect1d, sets)

    def rank(self, store: ConceptStore, subset: np.ndarray | None) -> list[tuple[float, int]]:
        """Photos of ``subset`` best first by their mean confidence in the wanted concepts."""
        ids = [] if subset is None else subset.tolist()
        wanted = [name for name, want, _ in self._conditions() if want]
        stored = store.get(ids)
        scored = []
        for item_id in ids:
            found = stored[item_id].confidences() if item_id in stored else {}
            score = float(np.mean([found.get(n, 0.0) for n in wanted])) if wanted else 1.0
            scored.append((round(score, 6), int(item_id)))
        return sorted(scored, key=lambda pair: (-pair[0], pair[1]))
