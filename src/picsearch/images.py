"""Reading image files: reduced-size decoding, EXIF orientation, and the reasons to skip."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "Unusable",
    "ImageFile",
    "read_file",
    "decode",
    "load_query_image",
    "to_rgb",
    "shrink",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
#: Images above this many pixels are skipped (decompression bombs); --max-pixels changes it.
DEFAULT_MAX_PIXELS = 200_000_000

# picsearch checks the pixel count itself and reports it as a skip, so
# Pillow's own bomb check (which warns, then raises at twice its limit) is off.
Image.MAX_IMAGE_PIXELS = None


class Unusable(Exception):
    """A file that cannot be indexed; str(exc) is the reason, worded for a person."""


@dataclass(frozen=True)
class ImageFile:
    """The bytes of one file and what identifies them."""

    data: bytes
    digest: str


def read_file(path: str | os.PathLike[str]) -> ImageFile:
    """Read a whole file and hash it, or raise Unusable saying why not."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except PermissionError:
        raise Unusable("unreadable: permission denied") from None
    except IsADirectoryError:
        raise Unusable("is a directory") from None
    except FileNotFoundError:
        raise Unusable("missing (broken symlink or removed while indexing)") from None
    except OSError as exc:
        raise Unusable(f"unreadable: {exc.strerror or exc}") from None
    if not data:
        raise Unusable("empty file (0 bytes)")
    # SHA-256 runs in hardware on current CPUs: half the cost of BLAKE2b here.
    return ImageFile(data=data, digest=hashlib.sha256(data).hexdigest()[:32])


def decode(data: bytes, *, short_side: int, max_pixels: int) -> tuple[Image.Image, int, int]:
    """Decode to RGB with the short side near ``short_side``; returns (image, width, height).

    JPEGs are decoded at reduced scale (draft mode) and the EXIF orientation is
    applied after the reduction, where it is cheap. width and height are the
    original size, after orientation.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise Unusable(
                    f"too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {max_pixels:,}; raise it with --max-pixels)"
                )
            orientation = image.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            image.draft("RGB", (short_side, short_side))
            image.load()
            image = ImageOps.exif_transpose(image) or image
            image = to_rgb(image)
            image = shrink(image, short_side)
    except Unusable:
        raise
    except UnidentifiedImageError:
        raise Unusable("not an image (unknown or unsupported format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise Unusable(f"corrupt or truncated image ({exc})") from None
    return image, width, height


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels of any mode; transparent pixels composited on a background."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def shrink(image: Image.Image, short_side: int) -> Image.Image:
    """The image with its short side reduced to ``short_side`` (never enlarged)."""
    width, height = image.size
    scale = short_side / min(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Bilinear: what the encoders resize with next; bicubic cost more for no recall.
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def load_query_image(
    source: str | os.PathLike[str] | Image.Image, *, short_side: int, max_pixels: int
) -> Image.Image:
    """A query image from a path or a PIL image; Unusable names the file on failure."""
    if isinstance(source, Image.Image):
        return shrink(to_rgb(ImageOps.exif_transpose(source) or source), short_side)
    path = Path(source).expanduser()
    try:
        image, _, _ = decode(read_file(path).data, short_side=short_side, max_pixels=max_pixels)
    except Unusable as exc:
        raise Unusable(f"query image {path}: {exc}") from None
    return image
