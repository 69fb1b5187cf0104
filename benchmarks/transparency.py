"""Which background transparent pixels get: the rule that keeps different pictures different.

    python benchmarks/transparency.py [--default]

Generates RGBA pictures whose content is (partly or only) in the alpha channel:
shapes and glyphs in eight colours drawn on transparency (the transparent pixels
keep the shape's own colour, as exported logos do: the picture is only in the
alpha channel), anti-aliased icons, and semi-transparent or cut-out versions of
the sample photos. Each candidate background composites them all; for every
pair of different pictures it counts how many become

- pixel-identical (mean absolute difference under 1/255 at 64x64),
- near-identical for the tiny model (cosine of its visual vectors above 0.999),
- with ``--default``, near-identical for the default model (cosine of its visual
  vectors above 0.98), on the shapes and glyphs only (it is slow),

and checks that a fully opaque picture comes out unchanged. Tables go to stdout.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageStat

from picsearch.encoders import load_encoder
from picsearch.images import to_rgb
from picsearch.samples import load_sample_photo

SIDE = 128
COLOURS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (220, 30, 30),
    "navy": (20, 30, 110),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "pink": (250, 180, 200),
}
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "flower", "camera"]


def _shape(kind: str, colour: tuple[int, int, int], scale: int = 1) -> Image.Image:
    side = SIDE * scale
    image = Image.new("RGBA", (side, side), (*colour, 0))
    draw = ImageDraw.Draw(image)
    fill = (*colour, 255)
    box = [side * 0.2, side * 0.2, side * 0.8, side * 0.8]
    if kind == "circle":
        draw.ellipse(box, fill=fill)
    elif kind == "square":
        draw.rectangle(box, fill=fill)
    elif kind == "triangle":
        draw.polygon(
            [(side / 2, side * 0.15), (side * 0.85, side * 0.85), (side * 0.15, side * 0.85)],
            fill=fill,
        )
    elif kind == "ring":
        draw.ellipse(box, outline=fill, width=max(1, side // 12))
    elif kind == "cross":
        draw.rectangle([side * 0.42, side * 0.1, side * 0.58, side * 0.9], fill=fill)
        draw.rectangle([side * 0.1, side * 0.42, side * 0.9, side * 0.58], fill=fill)
    else:  # a glyph
        font = ImageFont.load_default(size=side * 0.7)
        draw.text((side * 0.5, side * 0.5), kind, fill=fill, font=font, anchor="mm")
    return image


def _icon(kind: str, colour: tuple[int, int, int]) -> Image.Image:
    """Anti-aliased: drawn at 4x, reduced with premultiplied alpha."""
    return _shape(kind, colour, scale=4).resize((SIDE, SIDE), Image.Resampling.LANCZOS)


def _photo_variants(name: str) -> dict[str, Image.Image]:
    photo = load_sample_photo(name).convert("RGB").resize((SIDE, SIDE))
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1) - 0.5
    radial = np.clip(1 - np.hypot(xx, yy) * 2, 0, 1)
    masks = {
        "half": np.full((SIDE, SIDE), 128),
        "vignette": radial * 255,
        "cutout": (radial > 0.2) * 255,
        "fade": np.linspace(0, 255, SIDE)[None].repeat(SIDE, 0),
    }
    return {
        f"{name}-{kind}": Image.merge(
            "RGBA", (*photo.split(), Image.fromarray(mask.astype(np.uint8)))
        )
        for kind, mask in masks.items()
    }


def pictures() -> tuple[dict[str, Image.Image], list[str]]:
    """Every test picture by name, and the names of the shapes and glyphs."""
    kinds = ["circle", "square", "triangle", "ring", "cross", "A", "Z", "&"]
    drawn: dict[str, Image.Image] = {}
    for colour_name, colour in COLOURS.items():
        for kind in kinds:
            drawn[f"{colour_name}-{kind}"] = _shape(kind, colour)
            drawn[f"{colour_name}-{kind}-aa"] = _icon(kind, colour)
    shapes = list(drawn)
    for name in PHOTOS:
        drawn.update(_photo_variants(name))
    return drawn, shapes


# -- the candidate backgrounds ---------------------------------------------------------


def _mean_opaque_colour(rgba: Image.Image) -> tuple[float, float, float] | None:
    probe = rgba.resize((32, 32), Image.Resampling.BOX).convert("RGBa")
    red, green, blue, alpha = ImageStat.Stat(probe).sum
    if alpha == 0:
        return None
    return red / alpha * 255, green / alpha * 255, blue / alpha * 255


def _luminance(colour: tuple[float, float, float]) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def _solid(value: tuple[int, int, int]) -> Callable[[Image.Image], Image.Image]:
    return lambda rgba: Image.new("RGBA", rgba.size, (*value, 255))


def _checkerboard(rgba: Image.Image) -> Image.Image:
    cells = (np.indices(rgba.size[::-1]) // 8).sum(axis=0) % 2
    grey = np.where(cells, 204, 153).astype(np.uint8)
    return Image.fromarray(grey).convert("RGBA")


def _contrast(rgba: Image.Image) -> Image.Image:
    mean = _mean_opaque_colour(rgba)
    light = mean is not None and _luminance(mean) >= 128
    return Image.new("RGBA", rgba.size, (0, 0, 0, 255) if light else (255, 255, 255, 255))


def _complement(rgba: Image.Image) -> Image.Image:
    mean = _mean_opaque_colour(rgba) or (0.0, 0.0, 0.0)
    value = tuple(int(255 - c) for c in mean)
    return Image.new("RGBA", rgba.size, (*value, 255))


BACKGROUNDS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "white (before)": _solid((255, 255, 255)),
    "black": _solid((0, 0, 0)),
    "mid-grey": _solid((128, 128, 128)),
    "checkerboard": _checkerboard,
    "contrast (white/black by luminance)": _contrast,
    "complement of mean colour": _complement,
}


def composite(rgba: Image.Image, background: Callable[[Image.Image], Image.Image]) -> Image.Image:
    return Image.alpha_composite(background(rgba), rgba).convert("RGB")


def _renderers() -> dict[str, Callable[[Image.Image], Image.Image]]:
    """Each candidate, and what picsearch does now (it should match the contrast rule)."""
    made: dict[str, Callable[[Image.Image], Image.Image]] = {
        label: functools.partial(composite, background=background)
        for label, background in BACKGROUNDS.items()
    }
    made["picsearch.images.to_rgb"] = to_rgb
    return made


# -- measures --------------------------------------------------------------------------


def _different(names: list[str]) -> list[tuple[int, int]]:
    """Pairs of different pictures (a shape and its anti-aliased drawing are the same one)."""
    base = [name.removesuffix("-aa") for name in names]
    return [(i, j) for i, j in itertools.combinations(range(len(names)), 2) if base[i] != base[j]]


def _pixel_collisions(images: list[Image.Image], pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """(identical, near-identical) pairs: mean absolute difference under 1 and 4 of 255."""
    small = np.stack([np.asarray(im.resize((64, 64)), dtype=np.float32) for im in images])
    flat = small.reshape(len(images), -1)
    gaps = [np.abs(flat[i] - flat[j]).mean() for i, j in pairs]
    return sum(g < 1.0 for g in gaps), sum(g < 4.0 for g in gaps)


def _vector_collisions(vectors: np.ndarray, pairs: list[tuple[int, int]], threshold: float) -> int:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return sum(float(unit[i] @ unit[j]) > threshold for i, j in pairs)


def _vectors(encoder, images: list[Image.Image]) -> np.ndarray:
    """Joint and visual vectors side by side (each unit length)."""
    out = []
    for start in range(0, len(images), 32):
        batch = [im.resize((encoder.decode_size,) * 2) for im in images[start : start + 32]]
        embedded = encoder.embed_images(batch)
        out.append(np.concatenate([embedded.joint, embedded.visual], axis=1))
    return np.concatenate(out)


def _opaque_unchanged(render: Callable[[Image.Image], Image.Image]) -> bool:
    photo = load_sample_photo("coffee").convert("RGBA")
    return np.array_equal(np.asarray(render(photo)), np.asarray(photo.convert("RGB")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default", action="store_true", help="also the default model (slow)")
    args = parser.parse_args()
    drawn, shapes = pictures()
    names = list(drawn)
    pairs = _different(names)
    shape_pairs = _different(shapes)
    tiny = load_encoder("tiny")
    default = load_encoder("default") if args.default else None
    print(f"{len(names)} pictures ({len(shapes)} shapes and glyphs), {len(pairs)} pairs\n")
    header = (
        "| background | pixel-identical pairs | pixel-near pairs | tiny: near-identical |"
        " opaque unchanged |"
    )
    if default is not None:
        header += f" default: near-identical of {len(shape_pairs)} shape pairs |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for label, render in _renderers().items():
        print(f"  {label} ...", file=sys.stderr)
        flat = [render(drawn[n]) for n in names]
        identical, near = _pixel_collisions(flat, pairs)
        tiny_near = _vector_collisions(_vectors(tiny, flat), pairs, 0.999)
        row = f"| {label} | {identical} | {near} | {tiny_near} | {_opaque_unchanged(render)} |"
        if default is not None:
            vectors = _vectors(default, [flat[names.index(s)] for s in shapes])
            row += f" {_vector_collisions(vectors, shape_pairs, 0.98)} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
