"""Opening a library's SQLite file.

A file that cannot be written (or whose folder cannot) is opened read-only, so
reading commands still work; SQLite's failures come back as one-line
LibraryErrors that name the file and say what to do: a damaged file points to
``picsearch check --repair``, a read-only one says so.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar, cast
from urllib.parse import quote

from ..errors import DamagedLibrary, LibraryError, ReadOnlyLibrary

__all__ = ["Database", "open_database"]

log = logging.getLogger("picsearch")

P = ParamSpec("P")
R = TypeVar("R")


def _translated(path: Path, exc: sqlite3.Error) -> LibraryError | None:
    """The LibraryError a user should see for an SQLite failure, or None for a bug."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_NOTADB:
        lead = f"{path} is not a picsearch library, or it is damaged"
        return DamagedLibrary(path, str(exc), lead=lead)
    if code == sqlite3.SQLITE_CORRUPT:
        return DamagedLibrary(path, str(exc))
    if code == sqlite3.SQLITE_READONLY:
        return ReadOnlyLibrary(path)
    if code == sqlite3.SQLITE_FULL:
        return LibraryError(f"cannot write to {path}: the disk is full (free some space)")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return LibraryError(f"{path} is locked by another program: try again when it is done")
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return LibraryError(f"cannot read or write {path} ({exc})")
    if str(exc).startswith(("no such table", "no such column")):
        # The file opened but lacks a table or column every library has.
        return DamagedLibrary(path, str(exc))
    return None


def _raise_translated(db: sqlite3.Connection, exc: sqlite3.Error) -> None:
    error = _translated(getattr(db, "path", Path("?")), exc)
    if error is not None:
        raise error from None


def _translating(method: Callable[P, R]) -> Callable[P, R]:
    """A cursor method whose SQLite failures become LibraryErrors."""

    @functools.wraps(method)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            _raise_translated(cast(sqlite3.Cursor, args[0]).connection, exc)
            raise

    return translated


class _Cursor(sqlite3.Cursor):
    """A cursor whose SQLite failures, while running or fetching, become LibraryErrors.
    Rows are read lazily: a damaged page may only show up at ``__next__``."""

    execute = _translating(sqlite3.Cursor.execute)
    executemany = _translating(sqlite3.Cursor.executemany)
    executescript = _translating(sqlite3.Cursor.executescript)
    fetchone = _translating(sqlite3.Cursor.fetchone)
    fetchmany = _translating(sqlite3.Cursor.fetchmany)
    fetchall = _translating(sqlite3.Cursor.fetchall)

    def __next__(self) -> Any:
        return _next_row(self)


_next_row = _translating(sqlite3.Cursor.__next__)


class Database(sqlite3.Connection):
    """An SQLite connection to a library file that reports failures as LibraryErrors.

    ``path`` is the file; ``read_only`` says whether it was opened read-only.
    """

    path: Path
    read_only: bool

    def cursor(self, factory: Any = _Cursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def executescript(self, script: str, /) -> Any:  # type: ignore[override]
        return self.cursor().executescript(script)


def open_database(path: Path, *, timeout: float = 30.0) -> Database:
    """Open (or create) the SQLite file at ``path``: read-write when the file and its
    folder can be written (WAL needs files beside it), otherwise read-only."""
    if not path.exists():
        _make_folder(path)
    try:
        if _writable(path):
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None, factory=Database)
            db.path, db.read_only = path, False
        else:
            db = _open_read_only(path, timeout)
    except sqlite3.Error as exc:
        _fail(path, exc)
    return db


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LibraryError(f"cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise LibraryError(f"cannot create {path}: its folder {path.parent} is read-only")


def _writable(path: Path) -> bool:
    file_ok = not path.exists() or os.access(path, os.W_OK)
    return file_ok and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path, timeout: float) -> Database:
    """A read-only connection.

    While a writer has the library open, its WAL files are there and a read-only
    connection shares them. Otherwise SQLite would create them, owned by this
    reader and as read-only as the library (so the owner could no longer write
    once the file is writable again), or fail in a read-only folder: the file is
    read as immutable instead, creating nothing.
    """
    uri = f"file:{quote(os.fsencode(path.absolute()))}?mode=ro"
    wal = Path(f"{path}-wal")
    if wal.exists():
        db = _connect_uri(uri, path, timeout)
        try:
            db.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            return db
        except LibraryError:
            db.close()  # the WAL index cannot be shared (e.g. a read-only folder)
        if wal.stat().st_size:
            why = "it cannot be shared read-only"
            log.warning("reading %s without its last changes (in %s): %s", path, wal, why)
    return _connect_uri(uri + "&immutable=1", path, timeout)


def _connect_uri(uri: str, path: Path, timeout: float) -> Database:
    db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, factory=Database)
    db.path, db.read_only = path, True
    return db


def _fail(path: Path, exc: sqlite3.Error) -> NoReturn:
    raise _translated(path, exc) or LibraryError(f"cannot open {path} ({exc})") from None
