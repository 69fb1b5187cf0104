"""How strong a text-to-photo score must be to count as a match, per model.

A cosine similarity means different things for different models (and, for the
default model, for different ``--concepts`` levels). A model that knows where its
matching and non-matching pairs part carries that score as ``weak_cutoff``; a
search flags a text query's hits under it as weak.
The cutoff is calibrated on the tuning half of the quality sets
(``benchmarks/quality.py``, docs/quality.md) and travels with the encoder.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

__all__ = ["CalibratedCutoff", "CalibratedPerLevel", "weak_cutoff_of"]


@runtime_checkable
class CalibratedCutoff(Protocol):
    """An encoder that knows the score under which a text query's hit is a weak match."""

    #: Text-to-photo scores under this are weak matches (cosine, as searches report it).
    weak_cutoff: float


@runtime_checkable
class CalibratedPerLevel(Protocol):
    """An encoder whose cutoff depends on the library's ``--concepts`` level: the concept
    bank blends phrases into the default model's photo vectors, which moves scores."""

    weak_cutoff: float
    #: The cutoff at each level calibrated; other levels use ``weak_cutoff``.
    weak_cutoffs: dict[str, float]


def weak_cutoff_of(encoder: object, *, level: str | None = None) -> float | None:
    """The encoder's calibrated weak-match cutoff for a library indexed at ``level``
    (None: the encoder's default), or None when it has none."""
    if not isinstance(encoder, CalibratedCutoff):
        return None
    cutoff = encoder.weak_cutoff
    if isinstance(encoder, CalibratedPerLevel) and level is not None:
        cutoff = encoder.weak_cutoffs.get(level, cutoff)
    return float(cutoff) if cutoff is not None and math.isfinite(cutoff) else None
