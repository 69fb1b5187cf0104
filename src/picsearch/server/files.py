"""Reading a catalog photo for the client, and the rules that decide whether it may be.

A request names an item id, never a path. The file behind the id is served
only when all of these hold:

- its catalog path is absolute and normalised (no ``..``);
- its real path (all symlinks resolved) lies inside the real path of the
  folder that holds the catalog entry: a photo that is a symlink may point
  only within its own folder, never out of the indexed folders;
- it is a regular file (not a device, pipe or folder) of the catalog's size;
- for originals, its bytes still have the catalog's content hash, so whatever
  was swapped in after indexing is never sent.

Anything else is "not found", to the client, whatever the reason.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

__all__ = ["NotServable", "check_file", "read_file", "open_file"]

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class NotServable(Exception):
    """The file behind an item may not (or can no longer) be served; str() says why."""


def _real_path(path: str) -> str:
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise NotServable(f"catalog path is not absolute and normal: {path!r}")
    real = os.path.realpath(path)
    folder = os.path.realpath(os.path.dirname(path))
    if os.path.commonpath([real, folder]) != folder:
        raise NotServable(f"{path!r} is a symlink out of its folder (to {real!r})")
    return real


def check_file(path: str, *, size: int) -> str:
    """The real path of a catalog file that may be served (by stat only); NotServable if not."""
    real = _real_path(path)
    try:
        info = os.stat(real, follow_symlinks=False)
    except OSError as exc:
        raise NotServable(f"{path!r}: {exc.strerror or exc}") from None
    _check_stat(path, info, size)
    return real


def read_file(path: str, *, size: int, digest: str) -> bytes:
    """The bytes of a catalog file, if they are still the ones that were indexed."""
    real = _real_path(path)
    try:
        fd = os.open(real, _FLAGS)
    except OSError as exc:
        raise NotServable(f"{path!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_stat(path, os.fstat(handle.fileno()), size)
        data = handle.read(size + 1)
    if len(data) != size or hashlib.sha256(data).hexdigest()[: len(digest)] != digest:
        raise NotServable(f"{path!r} changed since it was indexed")
    return data


@contextmanager
def open_file(path: str, *, size: int, digest: str) -> Iterator[BinaryIO]:
    """A catalog file, open at its start, whose bytes were checked against the catalog's
    hash without holding them all in memory (for decoding large photos from the file).
    NotServable, on leaving, if the file was written to while it was open."""
    real = _real_path(path)
    try:
        fd = os.open(real, _FLAGS)
    except OSError as exc:
        raise NotServable(f"{path!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        before = os.fstat(handle.fileno())
        _check_stat(path, before, size)
        if hashlib.file_digest(handle, "sha256").hexdigest()[: len(digest)] != digest:
            raise NotServable(f"{path!r} changed since it was indexed")
        handle.seek(0)
        yield handle
        after = os.fstat(handle.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise NotServable(f"{path!r} changed while it was read")


def _check_stat(path: str, info: os.stat_result, size: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise NotServable(f"{path!r} is not a regular file")
    if info.st_size != size:
        raise NotServable(f"{path!r} changed since it was indexed (size)")
