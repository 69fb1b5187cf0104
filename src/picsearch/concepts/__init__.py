"""The concept bank: people, text, colours and objects seen at indexing time.

Detectors run once per photo while it is indexed (``--concepts off|fast|full``):

- ``pixels`` (no model): black and white, dark, colourful, dominant colour names;
- ``faces``: CenterFace → a person, a portrait, a group of people;
- ``objects``: YOLOv3-tiny → the 80 COCO classes, people among them;
- ``ocr``: RapidOCR → the words in the photo, searchable as words.

Their concepts are stored in the catalog, blended into the default model's
joint vector as short phrases, and used by the search filters. The model
detectors need ``pip install 'picsearch[concepts]'``; without it indexing
goes on with the pixel concepts only. See docs/concepts.md.
"""

from __future__ import annotations

from .bank import BLEND_WEIGHT, DEFAULT_LEVEL, LEVEL_DETECTORS, ConceptBank, check_level
from .base import LEVELS, Concept, Detections
from .fusion import TEXT_WEIGHT
from .pixels import COLOUR_NAMES
from .store import ConceptStore, Stored

__all__ = [
    "BLEND_WEIGHT",
    "COLOUR_NAMES",
    "Concept",
    "ConceptBank",
    "ConceptStore",
    "DEFAULT_LEVEL",
    "Detections",
    "LEVELS",
    "LEVEL_DETECTORS",
    "Stored",
    "TEXT_WEIGHT",
    "check_level",
]
