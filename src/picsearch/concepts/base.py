"""What a detector says about one photo: named concepts with confidences, and its words."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Concept", "Detections", "LEVELS", "merge"]

#: Indexing levels, cheapest first (``--concepts``).
LEVELS = ("off", "fast", "full")


@dataclass(frozen=True)
class Concept:
    """One thing seen in a photo.

    ``name`` is what filters and ``picsearch info`` use ("person", "face",
    "group", "text", "document", "bw", "dark", "colourful", "color:red",
    "object:car"); ``phrase`` is the short text embedded for it; ``confidence``
    is in [0, 1].
    """

    name: str
    confidence: float
    phrase: str


@dataclass(frozen=True)
class Detections:
    """Everything the concept bank found in one photo."""

    concepts: tuple[Concept, ...] = ()
    #: The words read in the photo (one line per text line), "" when none.
    text: str = ""
    #: The detectors that ran ("pixels", "faces", "objects", "ocr").
    detectors: tuple[str, ...] = field(default=())

    def get(self, name: str) -> Concept | None:
        return next((c for c in self.concepts if c.name == name), None)


def merge(concepts: list[Concept]) -> tuple[Concept, ...]:
    """One concept per name, the most confident one; sorted by confidence."""
    best: dict[str, Concept] = {}
    for concept in concepts:
        if concept.name not in best or concept.confidence > best[concept.name].confidence:
            best[concept.name] = concept
    return tuple(sorted(best.values(), key=lambda c: (-c.confidence, c.name)))
