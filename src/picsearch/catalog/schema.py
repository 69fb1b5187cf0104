"""The tables of a library file, and the checks made when one opens: that it is a
picsearch library, that it has every table (an older one gains those it lacks), and
that the meta values every command reads parse."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..concepts.store import SCHEMA as CONCEPT_SCHEMA
from ..errors import DamagedLibrary, LibraryError
from .browse import BROWSE_SCHEMA
from .check import meta_problems
from .file import Database
from .photos import PHOTO_SCHEMA

__all__ = ["SCHEMA_VERSION", "create_tables", "check_tables", "check_meta"]

#: 3 added photo_info (capture time, camera, place); 2 added the concept tables (concepts,
#: concept_runs, photo_text). Older versions gain the tables they lack on open.
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    path_bytes BLOB NOT NULL UNIQUE,   -- the exact file-system path, any encoding
    path TEXT NOT NULL,                -- the same path, printable
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,                -- SHA-256 of the file's bytes, first 128 bits
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    indexed_at REAL NOT NULL,
    version INTEGER NOT NULL,          -- the catalog generation that wrote the vectors
    metadata TEXT NOT NULL DEFAULT '{}',
    joint BLOB NOT NULL,               -- float32 vector in the text/image space
    visual BLOB                        -- float32 vector in the image-only space, if any
);
CREATE INDEX IF NOT EXISTS items_hash ON items(hash);
CREATE INDEX IF NOT EXISTS items_version ON items(version);
CREATE TABLE IF NOT EXISTS moves (     -- files moved by 'dups --move-to' and back by '--undo'
    id INTEGER PRIMARY KEY,
    log TEXT NOT NULL,                 -- the move log file that has the move's intent
    item INTEGER NOT NULL,
    old_path BLOB NOT NULL,
    new_path BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,                -- 'moved' or 'moved back'
    at REAL NOT NULL
);
"""

#: Every table a library has (those an older library lacks are made when it opens).
_TABLES = frozenset(
    re.findall(
        r"CREATE (?:VIRTUAL )?TABLE IF NOT EXISTS (\w+)", _SCHEMA + CONCEPT_SCHEMA + PHOTO_SCHEMA
    )
)


def create_tables(db: Database, verify_writable: Callable[[], None]) -> None:
    """The tables of a new file; the tables an older library lacks, once it is known
    to be sound (``verify_writable``: making them writes into the file). Another
    program's SQLite file is left alone."""
    names = _table_names(db)
    if names:
        _refuse_foreign(db, names)
        if not _TABLES <= names:
            verify_writable()
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    db.executescript(CONCEPT_SCHEMA)
    db.executescript(PHOTO_SCHEMA)
    db.executescript(BROWSE_SCHEMA)  # indexes only: not in _TABLES


def check_tables(db: Database) -> None:
    """A read-only file cannot gain the tables it lacks: it must have them all."""
    names = _table_names(db)
    _refuse_foreign(db, names)
    missing = {"concepts", "concept_runs", "photo_text", "photo_info"} - names
    if missing:
        raise LibraryError(
            f"{db.path} has an older schema and is read-only: open it once where it "
            "can be written, so picsearch can upgrade it"
        )


def check_meta(db: Database) -> None:
    """Meta values every command reads must parse, or nothing can be trusted."""
    problems = meta_problems(db)
    if problems:
        raise DamagedLibrary(db.path, problems[0].message)


def _table_names(db: Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_schema")}


def _refuse_foreign(db: Database, names: set[str]) -> None:
    core = sorted({"meta", "items"} - names)
    if core:
        raise LibraryError(f"{db.path} is not a picsearch library (no {core[0]} table)")
