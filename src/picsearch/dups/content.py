"""Whether a photo's pixels back its vector: blank pictures prove nothing.

Blank and nearly blank pictures (a white page, a transparent image flattened to
one colour) get the same vector whatever little they show, so two files are
confirmed duplicates only if both carry content or their bytes are the same.
Only the photos of pairs the vectors confirmed are read again, a small
thumbnail each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import InvalidInput
from ..images import DEFAULT_MAX_PIXELS, Unusable, decode, read_file

if TYPE_CHECKING:
    from ..library import Library

__all__ = ["MIN_CONTENT_SHARE", "content_share", "backed_by_pixels"]

log = logging.getLogger(__name__)

#: A photo carries content when at least this share of its thumbnail differs from its
#: background; the real photos of benchmarks/dups.py and all their copies have 0.10 or
#: more, a white page with a signature 0.007 (docs/dups.md, "Blank pictures").
MIN_CONTENT_SHARE = 0.02
#: The thumbnail the share is measured on: CONTENT_SIDE pixels square.
CONTENT_SIDE = 64
#: A thumbnail pixel differs from the background (the median colour) by more than this
#: in some channel (of 255): above JPEG and scanner noise on a blank page.
CONTENT_LEVEL = 8


@dataclass(frozen=True)
class _Look:
    """What a file holds now: its content hash and the share of it that shows something."""

    digest: str
    share: float


def content_share(path: str | os.PathLike[str]) -> float:
    """The share of a photo that differs from its background, as the encoders see it
    (transparency flattened): 0.0 for a blank picture; see MIN_CONTENT_SHARE."""
    look = _look(os.fspath(path))
    if look is None:
        raise InvalidInput(f"cannot read {os.fspath(path)} as an image: check the file")
    return look.share


def backed_by_pixels(
    library: Library, ids: np.ndarray, pairs: np.ndarray, sims: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose files agree with their vectors: both carry content, or the same bytes.

    ``pairs`` are rows of ``ids``; only the photos of these pairs are read again.
    """
    if not len(pairs):
        return pairs, sims
    rows = np.unique(pairs)
    paths = [library.get(int(ids[row])).path for row in rows]
    looks = dict(zip(rows.tolist(), _looks(paths), strict=True))
    keep = np.array([_same_content(looks[a], looks[b]) for a, b in pairs.tolist()], dtype=bool)
    unread = sum(look is None for look in looks.values())
    blank = sum(look is not None and look.share < MIN_CONTENT_SHARE for look in looks.values())
    if unread:
        log.info(
            "%d photos could not be read again (moved, deleted or changed since indexing) and "
            "were left out; 'picsearch index' updates the library",
            unread,
        )
    if blank:
        log.info("%d blank or nearly blank photos are grouped only with exact copies", blank)
    return pairs[keep], sims[keep]


def _same_content(a: _Look | None, b: _Look | None) -> bool:
    if a is None or b is None:  # what cannot be read cannot be confirmed, nor moved
        return False
    if a.digest == b.digest:
        return True
    return min(a.share, b.share) >= MIN_CONTENT_SHARE


def _looks(paths: Sequence[str]) -> list[_Look | None]:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(_look, paths))


def _look(path: str) -> _Look | None:
    try:
        file = read_file(path)
        # decode() flattens transparency as indexing did: the picture the vectors came from.
        image, _, _ = decode(file.data, short_side=CONTENT_SIDE, max_pixels=DEFAULT_MAX_PIXELS)
    except Unusable:
        return None
    return _Look(file.digest, _share_shown(image))


def _share_shown(image: Image.Image) -> float:
    """The share of the thumbnail's pixels that differ from its median colour."""
    square = image.resize((CONTENT_SIDE, CONTENT_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(square, dtype=np.float32)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    return float((np.abs(pixels - background).max(axis=2) > CONTENT_LEVEL).mean())
