"""Copies turned by 90, 180 or 270 degrees: each photo's turned views, embedded on demand.

A CNN sees a photo on its side as a different picture, so the stored (upright)
vectors miss turned copies. ``turned_views`` reads every photo again, turns it
three ways and embeds the turns in batches: three more image embeddings per
photo, which is why ``find_duplicates(turned=True)`` (``dups --turned``) is
opt-in. A photo that can no longer be read keeps its upright vector for every
view, so it matches nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..encoders import ImageEmbeddings
from ..errors import InvalidInput
from ..images import DEFAULT_MAX_PIXELS, Unusable, decode, read_file

if TYPE_CHECKING:
    from ..library import Library

__all__ = ["TURNS", "turned_views"]

log = logging.getLogger(__name__)

#: The turns tried, as PIL transposes (90, 180 and 270 degrees counter-clockwise).
TURNS = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
_BATCH = 16  # photos per encoder call (three images each)


def turned_views(library: Library, ids: np.ndarray, upright: np.ndarray, space: str) -> np.ndarray:
    """(n, 1 + len(TURNS), dim) L2-normalised views: the stored vector, then each turn."""
    views = np.repeat(upright[:, None, :], 1 + len(TURNS), axis=1)
    paths = [library.get(int(item_id)).path for item_id in ids]
    unreadable = 0
    for start, images in _batches(paths, library.encoder.decode_size):
        readable = {i: image for i, image in enumerate(images) if image is not None}
        unreadable += len(images) - len(readable)
        if not readable:
            continue
        turned = [image.transpose(turn) for image in readable.values() for turn in TURNS]
        vectors = _vectors(library.encoder.embed_images(turned), space)
        rows = np.asarray(list(readable)) + start
        views[rows, 1:] = vectors.reshape(len(readable), len(TURNS), -1)
    if unreadable:
        log.info("%d photos could not be read again; only their upright copies count", unreadable)
    return views


def _vectors(embedded: ImageEmbeddings, space: str) -> np.ndarray:
    vectors = embedded.visual if space == "visual" else embedded.joint
    if vectors is None:  # the stored visual vectors came from an encoder that gives them
        raise InvalidInput("the library's model gives no visual vectors: find duplicates in joint")
    return vectors


def _batches(paths: list[str], short_side: int) -> Iterator[tuple[int, list[Image.Image | None]]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(paths), _BATCH):
            chunk = paths[start : start + _BATCH]
            yield start, list(pool.map(lambda p: _load(p, short_side), chunk))


def _load(path: str, short_side: int) -> Image.Image | None:
    try:
        image, _, _ = decode(
            read_file(path).data, short_side=short_side, max_pixels=DEFAULT_MAX_PIXELS
        )
    except (Unusable, OSError):
        return None
    return image
