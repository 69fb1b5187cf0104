"""Reading image files: reduced-size decoding, EXIF orientation, and the reasons to skip."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageStat, UnidentifiedImageError

from .formats import (
    OPENER_EXTENSIONS,
    RAW_EXTENSIONS,
    RawUnreadable,
    decode_raw,
    is_opened_by_plugin,
    looks_like_raw,
    register_openers_for,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "Unusable",
    "ImageFile",
    "read_file",
    "max_file_bytes",
    "file_kind",
    "decode",
    "load_query_image",
    "to_rgb",
    "shrink",
]

IMAGE_EXTENSIONS = (
    frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
    | OPENER_EXTENSIONS
    | RAW_EXTENSIONS
)
#: Images above this many pixels are skipped (decompression bombs); --max-pixels changes it.
DEFAULT_MAX_PIXELS = 200_000_000

#: Bytes per pixel of the least compressed image Pillow reads (16-bit RGBA, uncompressed).
_MOST_BYTES_PER_PIXEL = 8
#: Room for what an image file holds besides its pixels (EXIF, ICC profiles, previews).
_METADATA_BYTES = 64 * 2**20
#: How much of a file is read to tell whether it is an image at all.
_HEADER_BYTES = 64 * 2**10
# The signatures of the formats in IMAGE_EXTENSIONS; other formats are left to Pillow.
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little- and big-endian, and BigTIFF
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)
_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}

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


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a person ("a FIFO")."""
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")


def max_file_bytes(max_pixels: int) -> int:
    """The largest file an image of at most ``max_pixels`` pixels can need."""
    return max_pixels * _MOST_BYTES_PER_PIXEL + _METADATA_BYTES


def read_file(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFile:
    """Read a whole image file and hash it, or raise Unusable saying why not.

    Never opens what is not a regular file (a FIFO would block), reads only the
    header of a file that is no image, and never reads more than
    ``max_file_bytes(max_pixels)``.
    """
    try:
        info = os.stat(path)
        _check_regular(info)
        with _open_regular(path) as handle:
            return _read_image_file(handle, info.st_size, max_pixels)
    except PermissionError:
        raise Unusable("unreadable: permission denied") from None
    except FileNotFoundError:
        raise Unusable("missing (broken symlink or removed while indexing)") from None
    except OSError as exc:
        raise Unusable(f"unreadable: {exc.strerror or exc}") from None


def _check_regular(info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise Unusable("is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise Unusable(f"not a regular file: {file_kind(info.st_mode)}")


def _open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    # O_NONBLOCK: a file swapped for a FIFO after the check above must not block the open.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _read_image_file(handle: io.BufferedReader, size: int, max_pixels: int) -> ImageFile:
    if size == 0:
        raise Unusable("empty file (0 bytes)")
    if not _looks_like_image(handle.read(_HEADER_BYTES)):
        raise Unusable("not an image (unknown or unsupported format)")
    limit = max_file_bytes(max_pixels)
    if size > limit:
        raise Unusable(_too_many_bytes(size, limit, max_pixels))
    handle.seek(0)
    # The size the file had when looked at, in one buffer: a file still growing is read
    # as it was (the catalog records that size, so the next run reads it again).
    data = handle.read(size)
    if not data:
        raise Unusable("empty file (0 bytes)")
    # SHA-256 runs in hardware on current CPUs: half the cost of BLAKE2b here.
    return ImageFile(data=data, digest=hashlib.sha256(data).hexdigest()[:32])


def _too_many_bytes(size: int, limit: int, max_pixels: int) -> str:
    return (
        f"too large for an image: {size:,} bytes (limit {limit:,} bytes for images of at most "
        f"{max_pixels:,} pixels; raise it with --max-pixels)"
    )


def _looks_like_image(header: bytes) -> bool:
    """Whether a file's first bytes are those of an image Pillow may read."""
    if header.startswith(_SIGNATURES) or (header[:4] == b"RIFF" and header[8:12] == b"WEBP"):
        return True
    if is_opened_by_plugin(header) or looks_like_raw(header):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(header)).close()
    except UnidentifiedImageError:
        return False
    except Exception:  # identified, but its header runs past what was read: decode decides
        return True
    return True


def decode(data: bytes, *, short_side: int, max_pixels: int) -> tuple[Image.Image, int, int]:
    """Decode to RGB with the short side near ``short_side``; returns (image, width, height).

    JPEGs are decoded at reduced scale (draft mode), HEIF files from an embedded
    thumbnail when one is large enough, RAW files from their preview (else a
    half-size demosaic), multi-frame files by their first frame; the EXIF
    orientation is applied after the reduction, where it is cheap. width and height
    are the original size, after orientation.
    """
    if looks_like_raw(data):
        try:
            decoded = decode_raw(data, short_side=short_side, max_pixels=max_pixels)
        except RawUnreadable as exc:
            raise Unusable(str(exc)) from None
        return _shrunk(decoded, short_side)
    register_openers_for(data[:_HEADER_BYTES])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise Unusable(
                    f"too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {max_pixels:,}; raise it with --max-pixels)"
                )
            orientation = image.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            image.draft("RGB", _draft_size(image, short_side))
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
    except RuntimeError as exc:  # what the HEIF and JPEG XL plugins raise on bad data
        raise Unusable(f"corrupt or truncated image ({_first_sentence(exc)})") from None
    return image, width, height


#: A HEIF file's embedded thumbnail is taken down to this share of the size asked for:
#: HEVC has no reduced-size decoding, and phones embed 320x240 thumbnails, just under
#: the 256 pixels models resize to (then crop to 224).
_HEIF_THUMBNAIL_SHARE = 7 / 8


def _draft_size(image: Image.Image, short_side: int) -> tuple[int, int]:
    """The size to ask a draft for: a HEIF thumbnail a little smaller than wanted costs
    the model nothing, where decoding the whole photo costs 10-30 times a JPEG's."""
    side = int(short_side * _HEIF_THUMBNAIL_SHARE) if image.format == "HEIF" else short_side
    return side, side


def _first_sentence(exc: Exception) -> str:
    """The start of a decoder's message: some run over several lines of build advice."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ")[0].rstrip(".")


def _shrunk(decoded: tuple[Image.Image, int, int], short_side: int) -> tuple[Image.Image, int, int]:
    image, width, height = decoded
    return shrink(to_rgb(image), short_side), width, height


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels of any mode; transparent pixels composited on a contrasting background.

    The background is white behind dark content and black behind light content
    (the mean luminance of the opaque pixels decides), so that pictures drawn
    only in their alpha channel (logos, icons, shapes in one colour) keep their
    shapes. Measured by ``benchmarks/transparency.py`` on 152 transparent
    pictures (shapes and glyphs in 8 colours, anti-aliased icons, semi-transparent
    and cut-out sample photos; 11,412 pairs of different pictures): pairs that
    become pixel-identical, white 112 / black 112 / mid-grey 112 / checkerboard 0
    / contrast 0 / complement of the mean colour 54; near-identical (mean
    difference under 4/255), white 230 / checkerboard 36 / contrast 15; pairs of
    the 128 shapes the default model sees as near-identical (cosine above 0.98),
    white 112 / checkerboard 6 / contrast 8. Opaque images are unchanged by any.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema() == (255, 255):
            return rgba.convert("RGB")  # fully opaque: nothing to composite
        background = Image.new("RGBA", rgba.size, _background_for(rgba))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _background_for(rgba: Image.Image) -> tuple[int, int, int, int]:
    """Black behind light content, white behind dark (or no) content."""
    # A small probe is enough for a mean; resize weighs colours by their alpha.
    probe = rgba.resize(_probe_size(rgba.size), Image.Resampling.BOX).convert("RGBa")
    red, green, blue, alpha = ImageStat.Stat(probe).sum  # colour sums are premultiplied
    if alpha == 0:
        return (255, 255, 255, 255)
    luminance = (0.299 * red + 0.587 * green + 0.114 * blue) / alpha * 255
    return (0, 0, 0, 255) if luminance >= 128 else (255, 255, 255, 255)


def _probe_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, 64 / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


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
        file = read_file(path, max_pixels=max_pixels)
        image, _, _ = decode(file.data, short_side=short_side, max_pixels=max_pixels)
    except Unusable as exc:
        raise Unusable(f"query image {path}: {exc}") from None
    return image
