"""Reading ahead in threads: each found file read and hashed, and unless its content
is known, decoded, looked at by the concept detectors and made ready for the model."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..concepts import ConceptBank, Detections
from ..encoders import Encoder
from ..images import Unusable, decode, read_file, shrink
from ..photo_info import PhotoInfo, read_photo_info
from .summary import Skip
from .walk import Found

__all__ = ["Prepared", "Same", "prepare", "ordered_results"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Prepared:
    """A file decoded and made ready for the model (and what the detectors saw)."""

    found: Found
    digest: str
    width: int
    height: int
    array: np.ndarray
    concepts: Detections | None = None
    photo: PhotoInfo | None = None  # when, where and with what it was taken


@dataclass(frozen=True)
class Same:
    """The file's bytes are already in the catalog under ``item_id``."""

    found: Found
    item_id: int
    photo: PhotoInfo | None = None  # read again: the file time, at least, may be new


def prepare(
    found: Found,
    encoder: Encoder,
    by_hash: dict[str, int],
    max_pixels: int,
    concepts: ConceptBank | None = None,
) -> Prepared | Same | Skip:
    """Runs in a worker thread: read, hash, and unless the content is known, decode
    (and run the concept detectors on the decoded photo)."""
    try:
        file = read_file(found.path)
        if file.digest in by_hash:
            return Same(found, by_hash[file.digest], read_photo_info(file.data, found.mtime_ns))
        side = max(encoder.decode_size, concepts.decode_side if concepts else 0)
        image, width, height = decode(file.data, short_side=side, max_pixels=max_pixels)
        detections = concepts.detect(image, label=found.path) if concepts else None
        array = encoder.preprocess(shrink(image, encoder.decode_size))
    except Unusable as exc:
        return Skip(found.path, str(exc))
    photo = read_photo_info(file.data, found.mtime_ns)
    return Prepared(found, file.digest, width, height, array, detections, photo)


def ordered_results(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    batch_size: int,
    *,
    thread_name: str = "picsearch-read",
) -> Generator[R, None, None]:
    """Results of ``work`` in order, computed ahead by a thread pool, with bounded memory.

    Closing the iterator early (or Ctrl-C while it waits) cancels the work not
    started yet and does not wait for the rest: it stops at once.
    """
    window = max(2 * batch_size, 4 * workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name)
    finished = False
    try:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    finally:
        pool.shutdown(wait=finished, cancel_futures=not finished)
