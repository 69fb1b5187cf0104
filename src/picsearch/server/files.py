"""Reading a catalog photo for the client, and the rules that decide whether it may be.

A request names an item id, never a path. The file behind the id is served
only when all of these hold:

- its catalog path is absolute and normalised (no ``..``);
- its real path (all symlinks resolved) lies inside the real path of the
  folder that holds the catalog entry: a photo that is a symlink may point
  only within its own folder, never out of the indexed folders;
- it is a regular file (not a device, pipe or folder) of the catalog's size;
- its bytes still have the catalog's content hash (for originals, checked
  again while they are sent), so whatever was swapped in after indexing is
  never sent, nor a thumbnail made of it.

Anything else is "not found", to the client, whatever the reason.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import BinaryIO

__all__ = ["NotServable", "CHUNK", "check_file", "open_checked", "checked_chunks", "open_file"]

#: Bytes of a file read (and sent) at a time.
CHUNK = 1024 * 1024

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


def open_checked(path: str, *, size: int, digest: str) -> BinaryIO:
    """A catalog file, open at its start, whose bytes have the catalog's hash: checked by
    reading it through once, never holding it all in memory. The caller closes it."""
    real = _real_path(path)
    try:
        fd = os.open(real, _FLAGS)
    except OSError as exc:
        raise NotServable(f"{path!r}: {exc.strerror or exc}") from None
    handle = os.fdopen(fd, "rb")
    try:
        _check_stat(path, os.fstat(fd), size)
        if hashlib.file_digest(handle, "sha256").hexdigest()[: len(digest)] != digest:
            raise NotServable(f"{path!r} changed since it was indexed")
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle


def checked_chunks(
    handle: BinaryIO, *, path: str, size: int, digest: str
) -> Generator[bytes, None, None]:
    """The bytes of an ``open_checked`` file, in chunks, closing it at the end. They are
    hashed again as they go and the last chunk is held back until they all match: a
    file written to meanwhile ends in NotServable, never in a whole changed file."""
    hasher, read, held = hashlib.sha256(), 0, b""
    with handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
            read += len(chunk)
            if held:
                yield held
            held = chunk
    if read != size or hasher.hexdigest()[: len(digest)] != digest:
        raise NotServable(f"{path!r} changed while it was sent")
    if held:
        yield held


@contextmanager
def open_file(path: str, *, size: int, digest: str) -> Iterator[BinaryIO]:
    """``open_checked`` for a ``with`` block (to decode a photo from its file); NotServable,
    on leaving, if the file was written to while it was open."""
    with open_checked(path, size=size, digest=digest) as handle:
        before = os.fstat(handle.fileno())
        yield handle
        after = os.fstat(handle.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise NotServable(f"{path!r} changed while it was read")


def _check_stat(path: str, info: os.stat_result, size: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise NotServable(f"{path!r} is not a regular file")
    if info.st_size != size:
        raise NotServable(f"{path!r} changed since it was indexed (size)")
