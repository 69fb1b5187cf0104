"""A tiny deterministic encoder: colour and brightness, no weights.

It maps an image to a normalised histogram over eight colour words and maps
text to the colour words it mentions. It exists so tests and examples can run
the whole pipeline in milliseconds; it is not meant for real photo search.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from .base import ImageEmbeddings, normalize

__all__ = ["TinyEncoder", "COLOURS"]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "white": (245, 245, 245),
    "black": (10, 10, 10),
    "purple": (140, 30, 160),
    "orange": (250, 140, 20),
}
_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32)


class TinyEncoder:
    model_id = "tiny-colour-v1"
    dim = len(COLOURS)
    visual_dim: int | None = 3 * 16
    decode_size = 32

    def preprocess(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR)
        return np.asarray(small, dtype=np.float32).reshape(-1, 3)

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        batch = np.asarray(batch, dtype=np.float32)
        distances = np.linalg.norm(batch[:, :, None, :] - _PALETTE[None, None], axis=-1)
        nearest = distances.argmin(axis=-1)
        histograms = np.stack([np.bincount(row, minlength=self.dim) for row in nearest])
        # The visual space: the mean colour of each of 16 horizontal stripes.
        stripes = batch.reshape(len(batch), 16, 16, 3).mean(axis=2).reshape(len(batch), -1)
        return ImageEmbeddings(
            joint=normalize(histograms.astype(np.float32)),
            visual=normalize(stripes - 127.5),
        )

    def embed_images(self, images: list[Image.Image]) -> ImageEmbeddings:
        return self.embed_arrays(np.stack([self.preprocess(im) for im in images]))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        names = list(COLOURS)
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                if word in COLOURS:
                    rows[i, names.index(word)] += 1.0
        rows[rows.sum(axis=1) == 0] = 1.0  # no colour word: no preference
        return normalize(rows)

    def export_query_model(self, folder: Path) -> dict:
        """The same encoder as self-contained ONNX graphs and a word-level tokenizer."""
        from . import tiny_graphs

        tiny_graphs.write_tokenizer(folder / "tokenizer.json", list(COLOURS))
        tiny_graphs.write_text_graph(folder / "text.onnx", len(COLOURS))
        tiny_graphs.write_image_graph(folder / "image.onnx", _PALETTE)
        return {
            "text": {"onnx": "text.onnx", "tokenizer": "tokenizer.json"},
            "image": {
                "onnx": "image.onnx",
                "outputs": ["joint", "visual"],
                "preprocess": {
                    "resize": [16, 16],
                    "resample": "bilinear",
                    "scale": [1.0, 1.0, 1.0],
                    "shift": [0.0, 0.0, 0.0],
                },
            },
        }
