"""Sample photos that ship inside scikit-image, scikit-learn and matplotlib, and captions.

They make a small real collection for the demo, the tests and the benchmarks,
with nothing to download. ``write_sample_photos(folder)`` writes them as JPEGs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import require

__all__ = ["SAMPLE_CAPTIONS", "write_sample_photos", "sample_names", "load_sample_photo"]

#: Photo name → captions a person might type to find it (the captioned set).
SAMPLE_CAPTIONS: dict[str, list[str]] = {
    "astronaut": ["an astronaut in a space suit", "a woman astronaut with a flag"],
    "camera": ["a man with a camera on a tripod", "a photographer outdoors"],
    "chelsea": ["a cat", "a ginger tabby cat"],
    "coffee": ["a cup of coffee", "an espresso on a saucer"],
    "coins": ["old coins", "a collection of coins"],
    "clock": ["a clock", "a wall clock"],
    "brick": ["a brick wall", "bricks"],
    "gravel": ["gravel stones on the ground", "pebbles"],
    "grass": ["grass", "a lawn"],
    "horse": ["a silhouette of a horse", "a horse"],
    "hubble_deep_field": ["galaxies in deep space", "stars in the night sky"],
    "immunohistochemistry": ["a microscope image of stained tissue", "cells under a microscope"],
    "moon": ["the surface of the moon", "lunar craters"],
    "page": ["a page of printed text", "a scanned book page"],
    "retina": ["the retina of an eye", "an eye fundus photo"],
    "rocket": ["a rocket on the launch pad", "a space shuttle launch"],
    "motorcycle": ["a motorcycle", "a motorbike in a garage"],
    "colorwheel": ["a colour wheel", "a rainbow of colours"],
    "china": ["a chinese temple", "a pagoda with a tiled roof"],
    "flower": ["a flower", "a pink flower in bloom"],
    "grace_hopper": ["a woman in a navy uniform", "a portrait of an officer"],
}


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        data = require(
            "skimage.data", package="scikit-image", extra="samples", purpose="the sample photos"
        )
        image = getattr(data, name)()
        return image[0] if isinstance(image, tuple) else image

    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        datasets = require(
            "sklearn.datasets", package="scikit-learn", extra="samples", purpose="the sample photos"
        )
        return datasets.load_sample_images().images[index]

    return load


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        cbook = require(
            "matplotlib.cbook", package="matplotlib", extra="samples", purpose="the sample photos"
        )
        with cbook.get_sample_data(filename) as handle:
            return np.asarray(Image.open(handle).convert("RGB"))

    return load


_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    **{
        name: _skimage(name)
        for name in (
            "astronaut",
            "camera",
            "chelsea",
            "coffee",
            "coins",
            "clock",
            "brick",
            "gravel",
            "grass",
            "horse",
            "hubble_deep_field",
            "immunohistochemistry",
            "moon",
            "page",
            "retina",
            "rocket",
            "colorwheel",
        )
    },
    "motorcycle": _skimage("stereo_motorcycle"),
    "china": _sklearn(0),
    "flower": _sklearn(1),
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
}


def sample_names() -> list[str]:
    return list(_SOURCES)


def _to_image(array: np.ndarray) -> Image.Image:
    if array.dtype == bool:
        array = np.where(array, 255, 0).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(array))
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def load_sample_photo(name: str) -> Image.Image:
    """One sample photo as a PIL image (RGB, or L for the greyscale ones)."""
    return _to_image(_SOURCES[name]())


def write_sample_photos(folder: str | Path, names: list[str] | None = None) -> list[Path]:
    """Write the sample photos as ``NAME.jpg`` into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or sample_names():
        path = folder / f"{name}.jpg"
        if not path.exists():
            load_sample_photo(name).save(path, quality=92)
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    for written_path in write_sample_photos(sys.argv[1] if len(sys.argv) > 1 else "samples"):
        print(written_path)
