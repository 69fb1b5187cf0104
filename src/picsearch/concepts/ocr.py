"""Words in photos with RapidOCR (Apache-2.0; PP-OCR detection and recognition ONNX models
inside the wheel), run in ONNX Runtime on one thread per pipeline worker.

OCR is the slowest detector: it runs only at ``--concepts full``, on the photo
decoded with its long side near ``DECODE_SIDE`` and the text detector limited
to ``DETECT_SIDE`` pixels (the speed/recall point measured by
``benchmarks/concepts.py ocr``).
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from ..errors import require
from .base import Concept
from .files import EXTRA

__all__ = ["OcrReader", "DETECT_SIDE", "DECODE_SIDE", "text_concepts"]

#: The text detector's input: long side limited to this many pixels.
DETECT_SIDE = 640
#: Photos are decoded for OCR with their short side near this many pixels.
DECODE_SIDE = 640
#: Lines read with less confidence than this are dropped.
LINE_SCORE = 0.7
#: At least this many characters, or lines, make a page of text (a document).
DOCUMENT_CHARS = 60
DOCUMENT_LINES = 4
SNIPPET_WORDS = 8
#: Photos smaller than this (pixels, short side) hold no readable text.
MIN_SIDE = 16
PHRASES = {"text": "text", "document": "a page of printed text"}


class OcrReader:
    """RapidOCR with the angle classifier off and the detector's input capped."""

    name = "ocr"

    def __init__(self, *, detect_side: int = DETECT_SIDE) -> None:
        rapidocr = require("rapidocr", package="rapidocr", extra=EXTRA, purpose="reading text")
        self.detect_side = detect_side
        self._engine = rapidocr.RapidOCR(
            params={
                "Global.log_level": "critical",
                "Global.use_cls": False,
                "Det.limit_type": "max",
                "Det.limit_side_len": detect_side,
                "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        # RapidOCR logs at warning for every photo without text.
        logging.getLogger("RapidOCR").setLevel(logging.CRITICAL)

    def lines(self, image: Image.Image) -> list[tuple[str, float]]:
        """(line, confidence) for each text line read, top to bottom."""
        if min(image.size) < MIN_SIDE:
            return []
        pixels = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
        result = self._engine(np.ascontiguousarray(pixels[:, :, ::-1]))  # it wants BGR
        texts, scores = result.txts or (), result.scores or ()
        return [
            (text.strip(), round(float(score), 3))
            for text, score in zip(texts, scores, strict=False)
            if score >= LINE_SCORE and sum(ch.isalnum() for ch in text) >= 2
        ]

    def __call__(self, image: Image.Image) -> tuple[list[Concept], str]:
        lines = self.lines(image)
        return text_concepts(lines), "\n".join(text for text, _ in lines)


def text_concepts(lines: list[tuple[str, float]]) -> list[Concept]:
    """Text, a document (much text), and the first words read as a phrase."""
    if not lines:
        return []
    scores = [score for _, score in lines]
    mean = round(float(np.mean(scores)), 3)
    concepts = [Concept("text", max(scores), PHRASES["text"])]
    if sum(len(text) for text, _ in lines) >= DOCUMENT_CHARS or len(lines) >= DOCUMENT_LINES:
        concepts.append(Concept("document", mean, PHRASES["document"]))
    words = " ".join(text for text, _ in lines).split()[:SNIPPET_WORDS]
    concepts.append(Concept("words", mean, f'text saying "{" ".join(words)}"'))
    return concepts
