"""Two captioned image sets for training and evaluating dual encoders, written reproducibly.

1. ``fashion``: Fashion-MNIST (the Debian ``dataset-fashion-mnist`` files), each
   image captioned from one of several templates of its class ("a photo of a
   sneaker", "someone's ankle boot", ...). Train on its train split, evaluate
   on its test split; the COCO-style files carry each image's class ``label``.
2. ``shapes``: rendered scenes of 1-3 shapes with a colour, a size and a place,
   captioned in words ("a small red circle left of a large blue square"). Six
   colour-shape combinations never appear in training; every test scene holds
   at least one of them, so test captions combine attributes in unseen ways.

Files go to ``benchmarks/data/captioned/<set>/`` (gitignored): ``train/``,
``test/`` and ``captions_train.json`` / ``captions_test.json`` in the COCO
captions format. Written once; a complete set is reused.

    python benchmarks/captioned_sets.py [--fashion-train 60000] [--shapes-train 12000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DATA = Path(__file__).resolve().parent / "data" / "captioned"
FASHION = Path("/usr/share/datasets/fashion-mnist")

# Class label (used in class queries), then the words captions use for it.
FASHION_CLASSES = [
    ("t-shirt", ["t-shirt", "tee", "short-sleeved top"]),
    ("pair of trousers", ["pair of trousers", "pair of pants", "pair of slacks"]),
    ("pullover", ["pullover", "sweater", "jumper"]),
    ("dress", ["dress", "frock", "summer dress"]),
    ("coat", ["coat", "jacket", "winter coat"]),
    ("sandal", ["sandal", "summer sandal", "strappy sandal"]),
    ("shirt", ["shirt", "button-up shirt", "blouse"]),
    ("sneaker", ["sneaker", "trainer", "running shoe"]),
    ("bag", ["bag", "handbag", "purse"]),
    ("ankle boot", ["ankle boot", "short boot", "booty"]),
]
FASHION_TEMPLATES = [
    "a photo of a {}",
    "a picture of a {}",
    "a {}",
    "a black and white photo of a {}",
    "a small photo of a {}",
    "a product shot of a {}",
    "someone's {}",
    "a {} for sale",
    "an image of a {}",
]

COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 70, 210),
    "yellow": (235, 205, 30),
    "purple": (130, 50, 170),
    "orange": (245, 135, 25),
}
SHAPES = ("circle", "square", "triangle", "cross")
SIZES = {"small": 20, "large": 40}
#: Colour-shape pairs kept out of training; every test scene holds one.
HELD_OUT = {
    ("red", "circle"),
    ("green", "square"),
    ("blue", "triangle"),
    ("yellow", "cross"),
    ("purple", "circle"),
    ("orange", "square"),
}
CANVAS = 224


def a_or_an(text: str) -> str:
    """Articles fixed: "a ankle boot" -> "an ankle boot"."""
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if word == "a" and words[i + 1][:1] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def _read_idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(FASHION / name) as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def fashion_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 28, 28) uint8, labels (n,)) of the train or test split."""
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    return images, _read_idx(f"{prefix}-labels-idx1-ubyte.gz", 8)


def _write_coco(path: Path, images: list[dict], captions: list[tuple[int, str]]) -> None:
    annotations = [
        {"id": i, "image_id": image_id, "caption": caption}
        for i, (image_id, caption) in enumerate(captions)
    ]
    data = {"images": images, "annotations": annotations}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)  # the captions file last: its presence means the split is complete


def write_fashion(root: Path = DATA / "fashion", *, train: int = 60000, seed: int = 0) -> Path:
    """Fashion-MNIST as PNGs with one templated caption each (train: the first ``train``)."""
    for split, count in (("train", train), ("test", None)):
        captions_file = root / f"captions_{split}.json"
        if captions_file.exists() and _count(captions_file) == (count or 10000):
            continue
        images, labels = fashion_arrays(split)
        images, labels = images[:count], labels[:count]
        rng = np.random.default_rng([seed, split == "test"])
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        entries, captions = [], []
        for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            name = f"{split}/{i:05d}.png"
            if not (root / name).exists():
                Image.fromarray(pixels).save(root / name)
            canonical, nouns = FASHION_CLASSES[label]
            template = FASHION_TEMPLATES[rng.integers(len(FASHION_TEMPLATES))]
            caption = a_or_an(template.format(nouns[rng.integers(len(nouns))]))
            entries.append({"id": i, "file_name": name, "label": canonical})
            captions.append((i, caption))
        _write_coco(captions_file, entries, captions)
    return root


def _count(path: Path) -> int:
    return len(json.loads(path.read_text(encoding="utf-8"))["images"])


def _draw(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle((x - s, y - s, x + s, y + s), fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=fill)
    else:  # cross
        t = r * 0.35
        draw.rectangle((x - r, y - t, x + r, y + t), fill=fill)
        draw.rectangle((x - t, y - r, x + t, y + r), fill=fill)


def _objects(rng: np.random.Generator, count: int, held_out: bool) -> list[tuple[str, str, str]]:
    """``count`` (size, colour, shape) triples; with ``held_out``, at least one unseen pair."""
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    seen = [p for p in pairs if p not in HELD_OUT]
    unseen = sorted(HELD_OUT)
    chosen = [seen[rng.integers(len(seen))] for _ in range(count)]
    if held_out:
        chosen[rng.integers(count)] = unseen[rng.integers(len(unseen))]
    sizes = list(SIZES)
    return [(sizes[rng.integers(2)], colour, shape) for colour, shape in chosen]


def shape_scene(rng: np.random.Generator, *, held_out: bool) -> tuple[Image.Image, str]:
    """One rendered scene and its caption."""
    count = int(rng.integers(1, 4))
    objects = _objects(rng, count, held_out)
    horizontal = bool(rng.integers(2))
    background = tuple(int(v) for v in rng.integers(215, 245, 3))
    image = Image.new("RGB", (CANVAS, CANVAS), background)
    draw = ImageDraw.Draw(image)
    slot = CANVAS / count
    for i, (size, colour, shape) in enumerate(objects):
        along = slot * (i + 0.5) + rng.uniform(-0.15, 0.15) * slot
        across = CANVAS / 2 + rng.uniform(-40, 40)
        x, y = (along, across) if horizontal else (across, along)
        radius = min(SIZES[size] * rng.uniform(0.9, 1.1), slot / 2 - 4)
        _draw(draw, shape, x, y, radius, COLOURS[colour])
    words = [f"a {size} {colour} {shape}" for size, colour, shape in objects]
    if count == 1:
        caption = words[0]
    elif count == 2:
        caption = f"{words[0]} {'left of' if horizontal else 'above'} {words[1]}"
    else:
        order = "from left to right" if horizontal else "from top to bottom"
        caption = f"{words[0]}, {words[1]} and {words[2]} {order}"
    return image, caption


def write_shapes(
    root: Path = DATA / "shapes", *, train: int = 12000, test: int = 1000, seed: int = 0
) -> Path:
    """The compositional shapes set: train scenes never hold a held-out colour-shape pair."""
    for split, count in (("train", train), ("test", test)):
        captions_file = root / f"captions_{split}.json"
        if captions_file.exists() and _count(captions_file) == count:
            continue
        rng = np.random.default_rng([seed, split == "test"])
        (root / split).mkdir(parents=True, exist_ok=True)
        entries, captions = [], []
        for i in range(count):
            image, caption = shape_scene(rng, held_out=split == "test")
            name = f"{split}/{i:05d}.png"
            image.save(root / name)
            entries.append({"id": i, "file_name": name})
            captions.append((i, caption))
        _write_coco(captions_file, entries, captions)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fashion-train", type=int, default=60000)
    parser.add_argument("--shapes-train", type=int, default=12000)
    parser.add_argument("--shapes-test", type=int, default=1000)
    args = parser.parse_args()
    print(write_fashion(train=args.fashion_train), file=sys.stderr)
    print(write_shapes(train=args.shapes_train, test=args.shapes_test), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
