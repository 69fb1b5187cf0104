"""Format readers beyond what Pillow reads by itself: HEIF, AVIF and JPEG XL openers
(registered once, when the first such file is met) and camera RAW files through LibRaw."""

from __future__ import annotations

from .openers import OPENER_EXTENSIONS, is_opened_by_plugin, register_openers_for
from .raw import RAW_EXTENSIONS, RawUnreadable, decode_raw, looks_like_raw

__all__ = [
    "OPENER_EXTENSIONS",
    "RAW_EXTENSIONS",
    "RawUnreadable",
    "decode_raw",
    "is_opened_by_plugin",
    "looks_like_raw",
    "register_openers_for",
]
