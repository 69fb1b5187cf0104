"""Moving one file so that its library always names a place where it is.

For each file:

1. the file is placed at its destination by a hard link, or across file systems
   by an exclusive copy checked against its SHA-256: it is now in both places;
2. the library's item takes the new path (same id, vectors, concepts and
   metadata) in one SQLite transaction with the ``moves`` journal row;
3. the old name is removed. If that fails, step 2 is reversed and the copy of
   step 1 removed.

Nothing is ever deleted or overwritten: a killed run leaves at worst a second
name for a file, which an undo removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from ..catalog import Catalog

__all__ = [
    "Ledger",
    "opened_catalog",
    "transfer",
    "discard",
    "file_sha256",
    "unique_name",
    "absolute",
]


class Ledger:
    """The library's side of moving files: each path change and its journal row, committed
    together. Without a library it only moves files."""

    def __init__(self, catalog: Catalog | None, log_name: str) -> None:
        self.catalog, self.log_name = catalog, log_name

    def taken(self, path: Path) -> bool:
        """Whether the library has an item at this path (a name to leave free)."""
        return self.catalog is not None and self.catalog.has_path(os.fsencode(path))

    def follow(self, old: Path, new: Path, sha256: str, *, back: bool = False) -> None:
        """The file at ``old`` is now (also) at ``new``: its item takes the new path."""
        if self.catalog is None:
            return
        info = os.stat(new)
        old_bytes, new_bytes = os.fsencode(old), os.fsencode(new)
        with self.catalog.transaction():
            item = self.catalog.relocate(
                old_bytes, new_bytes, size=info.st_size, mtime_ns=info.st_mtime_ns
            )
            if item is not None:
                self.catalog.record_move(
                    log=self.log_name,
                    item_id=item,
                    old=old_bytes,
                    new=new_bytes,
                    sha256=sha256,
                    back=back,
                )


@contextlib.contextmanager
def opened_catalog(library_file: Path | None) -> Iterator[Catalog | None]:
    if library_file is None:
        yield None
        return
    catalog = Catalog(library_file, create=False)
    try:
        catalog.verify_writable()  # before any file moves: a read-only library stops it here
        yield catalog
    finally:
        catalog.close()


def transfer(old: Path, new: Path, sha256: str, ledger: Ledger, *, back: bool = False) -> None:
    """Move a file so that the library always names a place where it is (module docstring)."""
    _place(old, new, sha256)
    try:
        ledger.follow(old, new, sha256, back=back)
    except (OSError, sqlite3.Error):
        discard(new, old, sha256)
        raise
    try:
        os.unlink(old)
    except OSError:
        # The old folder will not let the file go: the library and the copy go back.
        # Should the library refuse even that, both names stay, and it names one of them.
        with contextlib.suppress(OSError, sqlite3.Error):
            ledger.follow(new, old, sha256, back=not back)
            discard(new, old, sha256)
        raise


def _place(source: Path, destination: Path, sha256: str) -> None:
    """Put the file at ``destination`` too, never overwriting: a hard link, or an exclusive
    copy checked against its hash."""
    try:
        os.link(source, destination)  # fails if destination exists
    except FileExistsError:
        raise
    except OSError:  # another file system, or links not supported
        with open(source, "rb") as src, open(destination, "xb") as dst:
            shutil.copyfileobj(src, dst)
        shutil.copystat(source, destination)
        if file_sha256(destination) != sha256:
            os.unlink(destination)  # our own incomplete copy, never the user's file
            raise OSError(f"the copy of {source} does not match it") from None


def discard(copy: Path, original: Path, sha256: str) -> None:
    """Remove a second name or copy that this module made, never anything else."""
    with contextlib.suppress(OSError):
        if os.path.samefile(copy, original) or file_sha256(copy) == sha256 == file_sha256(original):
            os.unlink(copy)


def unique_name(
    path: Path, taken: set[Path], also_taken: Callable[[Path], bool] = lambda _: False
) -> Path:
    candidate, number = path, 0
    while (
        candidate in taken or candidate.exists() or candidate.is_symlink() or also_taken(candidate)
    ):
        number += 1
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
    return candidate


def absolute(path: str | os.PathLike[str]) -> Path:
    """Absolute and normalised: the form the library stores paths in."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
