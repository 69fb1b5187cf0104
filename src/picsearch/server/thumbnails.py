"""Thumbnails: made once per photo and size, then read from a cache folder.

A thumbnail's file name is the item id, the content hash of the photo and
the size, so a photo changed and re-indexed gets a new one, and a stale one
is never shown for it. Files are written to a temporary name and renamed,
so a reader never sees half a thumbnail, even with two made at once.

Large photos are what make a thumbnail costly: a 196-megapixel PNG is 600 MB
of pixels once decoded. So memory is bounded four ways:

- JPEGs are decoded at reduced scale (1/2 to 1/8, draft mode);
- one item is decoded by one request at a time: the others wait for it, then
  read the cached thumbnail it made;
- decodes of different photos share a budget of decoded pixels, first come
  first served (one larger than the whole budget runs alone);
- the full-size pixels are reduced in bands (no second full-size copy for
  colour conversion), and the memory of a large decode is given back to the
  system afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import math
import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from ..formats import RAW_EXTENSIONS, RawUnreadable, decode_raw, register_openers_for
from ..images import DEFAULT_MAX_PIXELS, to_rgb
from ..paths import cache_dir
from .files import NotServable, check_file, open_file

__all__ = [
    "ThumbnailCache",
    "PixelBudget",
    "SIZES",
    "DEFAULT_SIZE",
    "DEFAULT_PIXEL_BUDGET",
    "default_folder",
]

#: Longest side, in pixels, of the thumbnails the API makes.
SIZES = (160, 320, 640, 1280)
DEFAULT_SIZE = 320
#: Decoded pixels that thumbnails may hold at once (about 300 MB in RGB).
DEFAULT_PIXEL_BUDGET = 100_000_000
_QUALITY = 82
#: Decodes at least this large give their memory back to the system afterwards.
_TRIM_ABOVE_PIXELS = 16_000_000
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
#: Rows are converted and reduced this many bytes of pixels at a time.
_BAND_BYTES = 16_000_000
# EXIF orientation -> the transpose that shows the photo upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def default_folder(library_path: str | os.PathLike[str]) -> Path:
    """Under the picsearch cache folder, one subfolder per library file."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(library_path))).hexdigest()[:16]
    return cache_dir() / "thumbnails" / key


class PixelBudget:
    """At most ``pixels`` decoded pixels held at once, first come first served; a request
    larger than the whole budget waits until it can run alone."""

    def __init__(self, pixels: int) -> None:
        if pixels < 1:
            raise ValueError("the pixel budget must be at least 1")
        self.pixels = pixels
        #: The most pixels ever held at once (for tests and measurements).
        self.peak = 0
        self._used = 0
        self._waiting: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Wait for ``pixels`` of the budget and hold them for the ``with`` block."""
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
            while self._waiting[0] is not ticket or not self._fits(pixels):
                self._changed.wait()
            self._waiting.popleft()
            self._used += pixels
            self.peak = max(self.peak, self._used)
            self._changed.notify_all()  # the next in line may fit as well
        try:
            yield
        finally:
            with self._changed:
                self._used -= pixels
                self._changed.notify_all()

    def _fits(self, pixels: int) -> bool:
        return self._used == 0 or self._used + pixels <= self.pixels


class _KeyedLocks:
    """One lock per key, alive only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class ThumbnailCache:
    """JPEG thumbnails of catalog photos, keyed by item id + content hash + size."""

    def __init__(self, folder: Path, *, pixel_budget: int = DEFAULT_PIXEL_BUDGET) -> None:
        self.folder = folder
        self.budget = PixelBudget(pixel_budget)
        #: How many thumbnails this cache has made (decoded), rather than read.
        self.made = 0
        self._items = _KeyedLocks()
        self._count = threading.Lock()

    def get(self, item_id: int, *, path: str, size: int, digest: str, pixels: int) -> bytes:
        """The thumbnail's JPEG bytes, made now if not cached. NotServable if the photo
        may not be served (see ``files``) or cannot be decoded."""
        target = self.folder / f"{item_id}-{digest}-{pixels}.jpg"
        check_file(path, size=size)  # a cached thumbnail of a photo gone bad is not served
        cached = _cached(target)
        if cached is not None:
            return cached
        with self._items.hold(f"{item_id}-{digest}"):
            cached = _cached(target)  # made meanwhile, by the request this one waited for
            if cached is not None:
                return cached
            data = self._make(path, size=size, digest=digest, pixels=pixels)
            self._store(target, data)
        return data

    def _make(self, path: str, *, size: int, digest: str, pixels: int) -> bytes:
        with open_file(path, size=size, digest=digest) as handle:
            if os.path.splitext(path)[1].lower() in RAW_EXTENSIONS:
                data, decoded = _render_raw(handle.read(), pixels, self.budget)
            else:
                data, decoded = _render(handle, pixels, self.budget)
        with self._count:
            self.made += 1
        if decoded >= _TRIM_ABOVE_PIXELS:
            give_back_memory()
        return data

    def _store(self, target: Path, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_bytes(data)
        os.replace(temporary, target)


def _cached(target: Path) -> bytes | None:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None


#: What a RAW decode holds of the pixel budget: a half-size demosaic of a 24-MP sensor.
_RAW_PIXELS = 6_000_000


def _render_raw(data: bytes, pixels: int, budget: PixelBudget) -> tuple[bytes, int]:
    """A camera RAW's thumbnail, from its embedded preview or a half-size demosaic."""
    with budget.hold(_RAW_PIXELS):
        try:
            image, _, _ = decode_raw(data, short_side=pixels, max_pixels=DEFAULT_MAX_PIXELS)
        except RawUnreadable as exc:
            raise NotServable(f"cannot make a thumbnail: {exc}") from None
    return _jpeg(image, pixels), image.width * image.height


def _render(handle: BinaryIO, pixels: int, budget: PixelBudget) -> tuple[bytes, int]:
    """(JPEG bytes, pixels decoded) of a photo's thumbnail, longest side ``pixels``."""
    register_openers_for(handle.read(64))  # HEIF, AVIF, JPEG XL: their readers, once
    handle.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(handle)  # the file stays the caller's to close
            _check_pixels(image)
            orientation = image.getexif().get(0x0112, 1)
            image.draft("RGB", (pixels, pixels))  # JPEG: decode at 1/2 to 1/8 scale
            decoded = image.width * image.height
            with budget.hold(decoded):
                image.load()
                small = _reduced(image, pixels)
                del image  # the full-size pixels go while the budget still counts them
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotServable(f"cannot make a thumbnail: {exc}") from None
    if orientation in _UPRIGHT:
        small = small.transpose(_UPRIGHT[orientation])
    return _jpeg(small, pixels), decoded


def _jpeg(image: Image.Image, pixels: int) -> bytes:
    image.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    to_rgb(image).save(out, "JPEG", quality=_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def _check_pixels(image: Image.Image) -> None:
    if image.width * image.height > DEFAULT_MAX_PIXELS:
        raise NotServable(
            f"cannot make a thumbnail: {image.width}x{image.height} pixels is over the limit"
        )


def _reduced(image: Image.Image, pixels: int) -> Image.Image:
    """RGB, reduced by a whole factor to at least twice ``pixels`` on its longest side
    (the rest is left to a good filter). Band by band: a full-size copy in another
    mode (a palette expanded, alpha premultiplied) would double the memory."""
    factor = max(1, max(image.size) // (2 * pixels))
    if factor == 1:
        return to_rgb(image)
    # Transparent pixels are averaged premultiplied (as Image.reduce does), and put on a
    # background only once reduced: to_rgb chooses the background from the whole picture.
    alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    width, height = image.size
    rows = max(1, _BAND_BYTES // (width * 4 * factor)) * factor
    size = (math.ceil(width / factor), math.ceil(height / factor))
    reduced = Image.new("RGBa" if alpha else "RGB", size)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        band = band.convert("RGBA").convert("RGBa") if alpha else band.convert("RGB")
        reduced.paste(band.reduce(factor), (0, top // factor))
    return to_rgb(reduced.convert("RGBA")) if alpha else reduced


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_MALLOC_TRIM = _load_trim()


def give_back_memory() -> None:
    """Return freed heap memory to the system (glibc keeps it otherwise: a few large
    decodes would leave the server holding gigabytes it no longer uses)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
