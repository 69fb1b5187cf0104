"""A tiny deterministic encoder: colour and brightness, no weights.

It maps an image to a normalised histogram over eight colour words and maps
text to the colour words it mentions. It exists so tests and examples can run
the whole pipeline in milliseconds; it is not meant for real photo search.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import graphs
from .base import ImageEmbeddings, normalize, query_model_description

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

    def export_query_model(self, folder: Path) -> dict[str, Any]:
        """The same encoder as self-contained ONNX graphs and a word-level tokenizer."""
        _write_tokenizer(folder / "tokenizer.json", list(COLOURS))
        graphs.save(_text_graph(len(COLOURS)), folder / "text.onnx")
        graphs.save(_image_graph(_PALETTE), folder / "image.onnx")
        preprocess: dict[str, Any] = {"resize": [16, 16], "resample": "bilinear"}
        preprocess.update(scale=[1.0] * 3, shift=[0.0] * 3)
        return query_model_description(["joint", "visual"], preprocess)


def _write_tokenizer(path: Path, words: list[str]) -> None:
    """Lower-cased word-level tokens: id 0 pads, 1 is any other word, 2.. the colour words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1} | {word: i + 2 for i, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=64)
    tokenizer.save(str(path))


def _text_graph(colours: int) -> Any:
    """Counts of each colour word; no colour word at all: no preference (all ones)."""
    g = graphs.Graph("tiny_text")
    table = np.zeros((colours + 2, colours), dtype=np.float32)
    table[2:] = np.eye(colours, dtype=np.float32)
    onehot = g.op("Gather", [g.const("table", table), "input_ids"], axis=0)
    mask = g.op("Unsqueeze", [g.to_float("attention_mask"), g.axes(2)])
    counts = g.op("ReduceSum", [g.op("Mul", [onehot, mask]), g.axes(1)], keepdims=0)
    total = g.op("ReduceSum", [counts, g.axes(1)], keepdims=1)
    none = g.to_float(g.op("Equal", [total, g.const("zero", np.float32(0))]))
    g.normalize(g.op("Add", [counts, none]), "embedding")
    inputs = [g.value(name, ["n", "tokens"], np.int64) for name in ("input_ids", "attention_mask")]
    return g.model("tiny_text", inputs, [g.value("embedding", ["n", colours])])


def _image_graph(palette: np.ndarray) -> Any:
    """joint: histogram of nearest palette colours; visual: mean colour of 16 stripes."""
    g = graphs.Graph("tiny_image")
    colours = len(palette)
    hwc = g.op("Transpose", ["pixels"], perm=[0, 2, 3, 1])
    flat = g.op("Reshape", [hwc, g.const("shape", np.array([-1, 256, 1, 3], dtype=np.int64))])
    diff = g.op("Sub", [flat, g.const("palette", palette.reshape(1, 1, colours, 3))])
    distance = g.op("ReduceSum", [g.op("Mul", [diff, diff]), g.axes(3)], keepdims=0)
    nearest = g.op("ArgMin", [distance], axis=2, keepdims=0)
    depth = g.const("depth", np.array(colours, dtype=np.int64))
    values = g.const("values", np.array([0.0, 1.0], dtype=np.float32))
    hits = g.op("OneHot", [nearest, depth, values], axis=-1)
    g.normalize(g.op("ReduceSum", [hits, g.axes(1)], keepdims=0), "joint")
    stripe_means = g.op("ReduceMean", [hwc], axes=[2], keepdims=0)
    stripes = g.op("Reshape", [stripe_means, g.const("shape", np.array([-1, 48], dtype=np.int64))])
    g.normalize(g.op("Sub", [stripes, g.const("middle", np.float32(127.5))]), "visual")
    inputs = [g.value("pixels", ["n", 3, 16, 16])]
    outputs = [g.value("joint", ["n", colours]), g.value("visual", ["n", 48])]
    return g.model("tiny_image", inputs, outputs)
