"""Finding image files under the roots, and the cataloged photos verifiably gone.

A folder that cannot be listed, a file that cannot be looked at, a broken symlink:
each is an ``Unknown``, and every photo at or under it is kept, since nothing shows
it is gone. Only a photo whose file is not there when asked again is removed.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ..catalog import Catalog
from ..errors import InvalidInput
from ..formats import RAW_EXTENSIONS
from ..images import IMAGE_EXTENSIONS, file_kind
from .summary import Skip

__all__ = [
    "Found",
    "Unknown",
    "Catalogued",
    "PICTURE_EXTENSIONS",
    "LINKED_EXTENSIONS",
    "check_roots",
    "walk",
    "pair_up",
    "gone",
    "why",
]

SEP = os.fsencode(os.sep)
#: The picture of a pair is what is indexed: cameras and phones write these beside
#: the RAW (RAW+JPEG) or the Live Photo movie.
PICTURE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".heic", ".heif", ".hif"})
#: Files that are part of the photo of the same name when there is one.
LINKED_EXTENSIONS = RAW_EXTENSIONS | {".mov"}


@dataclass(frozen=True)
class Found:
    """An image file the walk found, with its identity."""

    path: str
    path_bytes: bytes
    size: int
    mtime_ns: int
    #: Files that are the same photo (its RAW, its Live Photo movie): not indexed apart.
    linked: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unknown:
    """A path that is there but could not be looked at (a folder that cannot be listed,
    a file that cannot be stat'ed, a broken symlink): the catalog keeps every item at
    or under it, since nothing shows they are gone."""

    path: str
    reason: str
    #: Report it only when the catalog holds photos under it (e.g. any broken symlink).
    quiet_when_empty: bool = False


def check_roots(roots: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The roots as absolute paths, or InvalidInput naming the first that cannot be indexed.

    A root that is missing or cannot be listed is refused rather than walked:
    walking it would find nothing, and so remove every photo the library holds under it.
    """
    paths = [_absolute(root) for root in roots]
    if not paths:
        raise InvalidInput("nothing to index: name at least one folder")
    for path in paths:
        _check_root(path)
    return paths


def _absolute(root: str | os.PathLike[str]) -> str:
    path = os.fsdecode(os.fspath(root))
    if not path:
        raise InvalidInput("an empty path was given to index: name a folder ('.' for this one)")
    return os.path.abspath(os.path.expanduser(path))


def _check_root(path: str) -> None:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            with os.scandir(path):
                pass
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist: check the folder name") from None
    except OSError as exc:
        raise InvalidInput(
            f"{path} cannot be read ({why(exc)}): check its permissions, or that its disk is "
            "mounted (the library was left as it is)"
        ) from None


def why(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "removed or unmounted while indexing"
    return (exc.strerror or str(exc)).lower()


class Catalogued:
    """Counts the cataloged photos at or under a path (sorted once, when first asked)."""

    def __init__(self, known: dict[bytes, tuple[int, int, int, str]]) -> None:
        self._known = known
        self._sorted: list[bytes] | None = None

    def under(self, path_bytes: bytes) -> int:
        if self._sorted is None:
            self._sorted = sorted(self._known)
        prefix = path_bytes.rstrip(SEP) + SEP
        # Paths under the folder sort between "folder/" and "folder0" ("0" follows "/").
        low = bisect.bisect_left(self._sorted, prefix)
        high = bisect.bisect_left(self._sorted, prefix[:-1] + bytes([prefix[-1] + 1]))
        return (high - low) + (path_bytes in self._known)


def walk(
    roots: list[str], ignored: dict[str, int] | None = None
) -> Iterator[Found | Skip | Unknown]:
    """Image files under the roots, following symlinks, never looping; sorted, depth first.

    A RAW with a JPEG or HEIC of the same name beside it, and a Live Photo's movie
    beside its picture, are found as one photo: the picture, with the other file in
    ``Found.linked``. Files of other types are counted in ``ignored`` by extension.
    """
    visited: set[tuple[int, int]] = set()
    counts = {} if ignored is None else ignored
    for root in roots:
        if os.path.isdir(root):
            yield from _walk_folder(root, visited, counts)
        else:
            found = _stat(root)
            if found is not None:
                yield found


def _walk_folder(
    root: str, visited: set[tuple[int, int]], ignored: dict[str, int]
) -> Iterator[Found | Skip | Unknown]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in visited:
                yield Skip(folder, "symlink loop or folder seen already: not followed")
                continue
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            yield Unknown(folder, f"folder cannot be listed ({why(exc)})")
            continue
        visited.add((info.st_dev, info.st_ino))
        subfolders: list[str] = []
        files: list[str] = []
        for entry in entries:
            yield from _look_at(entry, subfolders, files)
        yield from _files_of(files, ignored)
        stack.extend(reversed(subfolders))


def _look_at(entry: os.DirEntry[str], subfolders: list[str], files: list[str]) -> Iterator[Unknown]:
    """One entry of a listed folder: a subfolder to walk, a file to sort, or nothing."""
    try:
        is_folder = entry.is_dir()
        broken_link = not is_folder and entry.is_symlink() and not os.path.exists(entry.path)
    except OSError as exc:
        yield Unknown(entry.path, f"cannot be looked at ({why(exc)})")
        return
    if is_folder:
        if not entry.name.startswith("."):
            subfolders.append(entry.path)
    elif broken_link and _extension(entry.name) not in IMAGE_EXTENSIONS:
        # Maybe a link to a folder on a disk that is not mounted now: keep what was under it.
        yield Unknown(entry.path, "broken symlink: its target does not exist", True)
    else:
        files.append(entry.path)


def _files_of(paths: list[str], ignored: dict[str, int]) -> Iterator[Found | Skip | Unknown]:
    """A folder's files: its photos (with their linked files), the rest counted as ignored."""
    links = pair_up(paths)
    linked = {path for others in links.values() for path in others}
    for path in paths:
        extension = _extension(path)
        if path in linked:
            continue
        if extension not in IMAGE_EXTENSIONS:
            if not os.path.basename(path).startswith("."):
                key = extension or "(no extension)"
                ignored[key] = ignored.get(key, 0) + 1
            continue
        found = _stat(path)
        if isinstance(found, Found) and path in links:
            found = replace(found, linked=tuple(links[path]))
        if found is not None:
            yield found


def pair_up(paths: Iterable[str]) -> dict[str, list[str]]:
    """The files of one folder that are one photo with another: the picture's path, and
    the RAW or Live Photo movie with the same name (ignoring case) that goes with it."""
    by_stem: dict[str, list[str]] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0].casefold()
        by_stem.setdefault(stem, []).append(path)
    links: dict[str, list[str]] = {}
    for group in by_stem.values():
        pictures = [p for p in group if _extension(p) in PICTURE_EXTENSIONS]
        others = [p for p in group if _extension(p) in LINKED_EXTENSIONS]
        if pictures and others:
            links[pictures[0]] = others
    return links


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _stat(path: str) -> Found | Skip | Unknown | None:
    """What a file is; None when it is gone (removed since its folder was listed)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            return Unknown(path, "broken symlink: its target does not exist")
        return None
    except OSError as exc:
        return Unknown(path, f"cannot be read ({why(exc)})")
    if stat.S_ISDIR(info.st_mode):
        return None  # a root given as a folder is walked, not stat'ed
    if not stat.S_ISREG(info.st_mode):
        # Never opened: reading a FIFO or a device would block or never end.
        return Skip(path, f"not a regular file: {file_kind(info.st_mode)}")
    return Found(path, os.fsencode(path), info.st_size, info.st_mtime_ns)


def gone(
    catalog: Catalog,
    roots: list[str],
    seen: set[bytes],
    kept: set[bytes],
    absorbed: frozenset[bytes] | set[bytes] = frozenset(),
) -> list[int]:
    """Items under the indexed roots whose files verifiably no longer exist: not found
    this time, not at or under a path that could not be looked at, and not there now;
    and items ``absorbed`` into another photo (a RAW whose JPEG is now in the catalog)."""
    roots_bytes = {os.fsencode(r) for r in roots}
    gone = []
    for item_id, path_bytes in catalog.iter_paths():
        if path_bytes in absorbed:
            gone.append(item_id)
            continue
        if path_bytes in seen or _at_or_under(path_bytes, kept):
            continue
        if _at_or_under(path_bytes, roots_bytes) and _no_longer_there(path_bytes):
            gone.append(item_id)
    return gone


def _no_longer_there(path_bytes: bytes) -> bool:
    """Asked of each photo about to be removed. A file that is still there (in a hidden
    folder, under a name without an image extension, both indexed as roots before, or
    made since the walk) is kept, and so is one whose folder cannot be looked at now."""
    try:
        info = os.stat(path_bytes)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return not stat.S_ISREG(info.st_mode)


def _at_or_under(path_bytes: bytes, paths: set[bytes]) -> bool:
    """Whether the path or one of its parent folders is in ``paths`` (a few look-ups)."""
    while path_bytes:
        if path_bytes in paths:
            return True
        parent = path_bytes.rsplit(SEP, 1)[0]
        if parent == path_bytes:
            return False
        path_bytes = parent
    return SEP in paths
