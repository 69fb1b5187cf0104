"""Camera RAW and DNG files through LibRaw (rawpy): the embedded JPEG preview when it is
at least as large as needed (fast), else a half-size demosaic."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

__all__ = ["RAW_EXTENSIONS", "RawUnreadable", "decode_raw", "looks_like_raw"]

RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw"}
)

#: First bytes of the RAW formats that are no plain TIFF (Fujifilm, Olympus, Panasonic).
_RAW_SIGNATURES = (b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")
_DNG_VERSION = 50706
_NEW_SUBFILE_TYPE = 254
_PHOTOMETRIC = 262
_MAKE = 271
#: PhotometricInterpretation of sensor data: colour filter array, linear raw.
_SENSOR_PHOTOMETRIC = (32803, 34892)
#: LibRaw's flip: how to turn the decoded sensor image upright.
_TURNS = {
    3: Image.Transpose.ROTATE_180,
    5: Image.Transpose.ROTATE_90,
    6: Image.Transpose.ROTATE_270,
}


class RawUnreadable(Exception):
    """A RAW file that cannot be used; str(exc) is the reason, worded for a person."""


def looks_like_raw(data: bytes) -> bool:
    """Whether the bytes are a camera RAW or DNG file rather than an ordinary image.

    Canon CR2/CR3, Fujifilm, Olympus and Panasonic files have their own signatures; DNG,
    Nikon, Sony, Pentax and Samsung files are TIFFs that hold sensor data or put a
    preview first (an ordinary TIFF does neither).
    """
    if data.startswith(_RAW_SIGNATURES) or data[4:12] == b"ftypcrx ":
        return True
    if not data.startswith(_TIFF_SIGNATURES):
        return False
    if data[8:10] == b"CR":  # Canon CR2
        return True
    return _tiff_holds_sensor_data(data)


def _tiff_holds_sensor_data(data: bytes) -> bool:
    try:
        with warnings.catch_warnings():  # a truncated TIFF warns: LibRaw says why, later
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
        with image:
            tags = image.tag_v2  # type: ignore[attr-defined]
            if _DNG_VERSION in tags or tags.get(_PHOTOMETRIC) in _SENSOR_PHOTOMETRIC:
                return True
            return bool(tags.get(_NEW_SUBFILE_TYPE, 0) & 1) and _MAKE in tags
    except Exception:  # a TIFF Pillow cannot read: LibRaw may, and says why if not
        return True


def decode_raw(data: bytes, *, short_side: int, max_pixels: int) -> tuple[Image.Image, int, int]:
    """Decode a RAW file to RGB; returns (image, width, height) as ``images.decode`` does,
    or raises RawUnreadable saying why not."""
    try:
        import rawpy
    except ImportError:
        raise RawUnreadable("a camera RAW file: install rawpy to read it") from None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            width, height = _upright_size(raw.sizes)
            if width * height > max_pixels:
                raise RawUnreadable(
                    f"too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {max_pixels:,}; raise it with --max-pixels)"
                )
            image = _preview(raw, short_side, raw.sizes.flip) or _half_size(raw)
    except rawpy.LibRawError as exc:
        raise RawUnreadable(f"a RAW file LibRaw cannot decode ({_reason(exc)})") from None
    except (OSError, ValueError, MemoryError) as exc:
        raise RawUnreadable(f"a RAW file LibRaw cannot decode ({exc})") from None
    return image, width, height


def _upright_size(sizes: object) -> tuple[int, int]:
    width, height, flip = sizes.width, sizes.height, sizes.flip  # type: ignore[attr-defined]
    return (height, width) if flip in (5, 6) else (width, height)


def _preview(raw: object, short_side: int, flip: int) -> Image.Image | None:
    """The embedded preview, upright, when its short side is at least ``short_side``."""
    import rawpy

    try:
        thumb = raw.extract_thumb()  # type: ignore[attr-defined]
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            image = Image.open(io.BytesIO(thumb.data))
            if min(image.size) < short_side:
                return None
            image.draft("RGB", (short_side, short_side))
            image.load()
        except OSError:  # a damaged preview: the sensor data may still be fine
            return None
        return _upright(image, flip)
    array = np.asarray(thumb.data)
    if array.ndim != 3 or min(array.shape[:2]) < short_side:
        return None
    return _upright(Image.fromarray(array[..., :3].astype(np.uint8)), flip)


def _upright(image: Image.Image, flip: int) -> Image.Image:
    """A preview with its own EXIF orientation follows it; else the RAW's orientation."""
    if image.getexif().get(0x0112, 1) != 1:
        return ImageOps.exif_transpose(image) or image
    image = image.convert("RGB")
    return image.transpose(_TURNS[flip]) if flip in _TURNS else image


def _half_size(raw: object) -> Image.Image:
    rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)  # type: ignore[attr-defined]
    if rgb.ndim == 3 and rgb.shape[2] == 1:  # monochrome sensors give one channel
        rgb = rgb[..., 0]
    return Image.fromarray(np.ascontiguousarray(rgb))


def _reason(exc: Exception) -> str:
    text = exc.args[0] if exc.args else type(exc).__name__
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)
