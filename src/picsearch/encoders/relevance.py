"""How strong a text-to-photo score must be to count as a match, per model.

A cosine similarity means different things for different models: the default
model's text and image vectors meet around 0.3-0.6, a CLIP model's around
0.2-0.35. A model that knows where its matching and non-matching pairs part
carries that score as ``weak_cutoff``; a search flags hits under it as weak.
The cutoff is calibrated on the tuning half of the quality sets
(``benchmarks/quality.py``, docs/quality.md) and travels with the encoder.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

__all__ = ["CalibratedCutoff", "weak_cutoff_of"]


@runtime_checkable
class CalibratedCutoff(Protocol):
    """An encoder that knows the score under which a text query's hit is a weak match."""

    #: Text-to-photo scores under this are weak matches (cosine, as searches report it).
    weak_cutoff: float


def weak_cutoff_of(encoder: object) -> float | None:
    """The encoder's calibrated weak-match cutoff, or None when it has none."""
    if not isinstance(encoder, CalibratedCutoff):
        return None
    cutoff = encoder.weak_cutoff
    return float(cutoff) if cutoff is not None and math.isfinite(cutoff) else None
