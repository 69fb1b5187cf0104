"""Pillow openers for the formats phones write: HEIF/HEIC (pillow-heif), AVIF (Pillow's
own when built with libavif, else pillow-avif-plugin) and JPEG XL (pillow-jxl-plugin).

Each opener is registered once, the first time a file of its format is met, so that a
library of JPEGs never imports them."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from PIL import features

__all__ = ["OPENER_EXTENSIONS", "is_opened_by_plugin", "register_openers_for"]

OPENER_EXTENSIONS = frozenset({".heic", ".heif", ".hif", ".avif", ".jxl"})

#: ISO base media file brands (the 'ftyp' box) of HEIF still images and sequences.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_JXL_SIGNATURES = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")

_lock = threading.Lock()
_registered: set[str] = set()


def _brands(header: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO base media file; empty for other files."""
    if header[4:8] != b"ftyp":
        return set()
    size = int.from_bytes(header[:4], "big")
    end = min(max(size, 16), len(header))
    return {header[8:12]} | {header[i : i + 4] for i in range(16, end - 3, 4)}


def _format_of(header: bytes) -> str | None:
    if header.startswith(_JXL_SIGNATURES):
        return "jxl"
    brands = _brands(header)
    # AVIF first: an AVIF file may also list 'mif1', which pillow-heif reads only without AV1.
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIF_BRANDS:
        return "heif"
    return None


def is_opened_by_plugin(header: bytes) -> bool:
    """Whether a file's first bytes are those of a HEIF, AVIF or JPEG XL file."""
    return _format_of(header) is not None


def register_openers_for(header: bytes) -> None:
    """Make Pillow able to open the file that starts with ``header`` (once per format).

    A missing plugin is not an error here: Pillow then says it cannot identify the
    file, and the file is skipped with that reason.
    """
    kind = _format_of(header)
    if kind is None or kind in _registered:
        return
    with _lock:
        if kind not in _registered:
            _REGISTER[kind]()
            _registered.add(kind)


def _register_heif() -> None:
    try:
        pillow_heif = importlib.import_module("pillow_heif")
    except ImportError:
        return
    # Thumbnails on: Image.draft then decodes an embedded thumbnail when it is big enough.
    pillow_heif.register_heif_opener(thumbnails=True)


def _register_avif() -> None:
    if features.check("avif"):
        return  # Pillow reads AVIF itself
    _import_quietly("pillow_avif")


def _register_jxl() -> None:
    _import_quietly("pillow_jxl")  # importing the plugin registers it


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except ImportError:
        pass


_REGISTER: dict[str, Callable[[], None]] = {
    "heif": _register_heif,
    "avif": _register_avif,
    "jxl": _register_jxl,
}
