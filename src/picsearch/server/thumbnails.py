"""Thumbnails: made once per photo and size, then read from a cache folder.

A thumbnail's file name is the item id, the content hash of the photo and
the size, so a photo changed and re-indexed gets a new one, and a stale one
is never shown for it. Files are written to a temporary name and renamed,
so a reader never sees half a thumbnail, even with two made at once.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

from PIL import Image

from ..images import DEFAULT_MAX_PIXELS, Unusable, decode
from ..paths import cache_dir
from .files import NotServable, check_file, read_file

__all__ = ["ThumbnailCache", "SIZES", "DEFAULT_SIZE", "default_folder"]

#: Longest side, in pixels, of the thumbnails the API makes.
SIZES = (160, 320, 640, 1280)
DEFAULT_SIZE = 320
_QUALITY = 82


def default_folder(library_path: str | os.PathLike[str]) -> Path:
    """Under the picsearch cache folder, one subfolder per library file."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(library_path))).hexdigest()[:16]
    return cache_dir() / "thumbnails" / key


class ThumbnailCache:
    """JPEG thumbnails of catalog photos, keyed by item id + content hash + size."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, item_id: int, *, path: str, size: int, digest: str, pixels: int) -> bytes:
        """The thumbnail's JPEG bytes, made now if not cached. NotServable if the photo
        may not be served (see ``files``) or cannot be decoded."""
        target = self.folder / f"{item_id}-{digest}-{pixels}.jpg"
        check_file(path, size=size)  # a cached thumbnail of a photo gone bad is not served
        try:
            return target.read_bytes()
        except FileNotFoundError:
            pass
        data = _render(read_file(path, size=size, digest=digest), pixels)
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return data


def _render(data: bytes, pixels: int) -> bytes:
    try:
        image, _, _ = decode(data, short_side=pixels, max_pixels=DEFAULT_MAX_PIXELS)
    except Unusable as exc:
        raise NotServable(f"cannot make a thumbnail: {exc}") from None
    image.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=_QUALITY, optimize=True, progressive=True)
    return out.getvalue()
