"""Concepts read straight from the pixels of a thumbnail: no model.

Black and white (the chroma of the lit pixels), darkness (mean luminance),
colourfulness (Hasler and Süsstrunk, 2003) and the dominant colour names
(hue bins of the saturated pixels, plus white and black).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import Concept

__all__ = ["COLOUR_NAMES", "pixel_concepts", "THUMBNAIL"]

#: Long side of the thumbnail the statistics are taken on.
THUMBNAIL = 64
#: The names ``--color`` takes.
COLOUR_NAMES = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "white",
    "black",
)
# Hue bins in degrees: [start, end) → name (red wraps around 0).
_HUES = (
    (0, 15, "red"),
    (15, 40, "orange"),
    (40, 70, "yellow"),
    (70, 165, "green"),
    (165, 260, "blue"),
    (260, 290, "purple"),
    (290, 345, "pink"),
    (345, 360, "red"),
)
#: Mean chroma (0-255) of the lit pixels below which a photo is black and white.
BW_CHROMA = 6.0
#: Mean luminance (0-255) below which a photo counts as dark.
DARK_LUMINANCE = 55.0
#: Hasler-Süsstrunk colourfulness above which a photo is "colourful" (82 = "extremely").
COLOURFUL_M = 70.0
#: Share of the photo a colour must cover to be named.
COLOUR_SHARE = 0.2

# Phrases without "photo" in them: the word would pull every "a ... photo" query.
PHRASES = {
    "bw": "black and white, monochrome",
    "dark": "a dark night scene",
    "colourful": "colourful",
}


def pixel_concepts(image: Image.Image) -> list[Concept]:
    """The pixel-level concepts of an RGB image."""
    rgb = _thumbnail(image)
    concepts = []
    luminance = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    lit = luminance > 25
    mean_chroma = float(chroma[lit].mean()) if lit.any() else 0.0
    if mean_chroma < BW_CHROMA:
        concepts.append(Concept("bw", _clip(1.0 - mean_chroma / (2 * BW_CHROMA)), PHRASES["bw"]))
    mean_luminance = float(luminance.mean())
    if mean_luminance < DARK_LUMINANCE:
        confidence = _clip(0.5 + (DARK_LUMINANCE - mean_luminance) / DARK_LUMINANCE)
        concepts.append(Concept("dark", confidence, PHRASES["dark"]))
    colourfulness = _colourfulness(rgb)
    if colourfulness >= COLOURFUL_M:
        confidence = _clip(0.5 + (colourfulness - COLOURFUL_M) / 40)
        concepts.append(Concept("colourful", confidence, PHRASES["colourful"]))
    if mean_chroma >= BW_CHROMA:
        concepts.extend(_colour_names(rgb, luminance, chroma))
    return concepts


def _thumbnail(image: Image.Image) -> np.ndarray:
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = THUMBNAIL / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image, dtype=np.float32).reshape(-1, 3)


def _colourfulness(rgb: np.ndarray) -> float:
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = np.hypot(rg.std(), yb.std())
    centre = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * centre)


def _colour_names(rgb: np.ndarray, luminance: np.ndarray, chroma: np.ndarray) -> list[Concept]:
    """Colours covering at least COLOUR_SHARE of the photo, most covering first."""
    value = rgb.max(axis=-1)
    saturation = chroma / np.maximum(value, 1)
    hue = _hue_degrees(rgb, value, chroma)
    coloured = (saturation > 0.3) & (value > 60)
    names = np.full(len(rgb), "", dtype=object)
    for start, end, name in _HUES:
        names[coloured & (hue >= start) & (hue < end)] = name
    # Brown is a dark orange or red.
    names[coloured & (hue < 45) & (value < 150) & (saturation > 0.35)] = "brown"
    names[(saturation < 0.15) & (luminance > 200)] = "white"
    names[luminance < 35] = "black"
    shares = {name: float(np.mean(names == name)) for name in COLOUR_NAMES}
    found = [
        Concept(f"color:{name}", _clip(share / (2 * COLOUR_SHARE)), name)
        for name, share in shares.items()
        if share >= COLOUR_SHARE
    ]
    return sorted(found, key=lambda c: -c.confidence)


def _hue_degrees(rgb: np.ndarray, value: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        value == r,
        ((g - b) / safe) % 6,
        np.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    return hue * 60.0


def _clip(value: float) -> float:
    return round(float(min(1.0, max(0.0, value))), 3)
