"""Copying what is readable of a library file with damaged pages into a fresh file.

Rows are copied in key order; at an unreadable stretch the next readable key is
found (strides out, then halves back) and copying goes on from there. The stretches
lost are said, one line each; concept rows of lost photos go with them, so the next
index run looks at those photos again. The fresh file then replaces the damaged one.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DamagedLibrary, LibraryError
from .check import fts_tables
from .core import Catalog
from .file import Database

__all__ = ["readable_schema", "salvage"]

_LOWEST, _HIGHEST = -(2**63), 2**63 - 1
#: Concept tables: rows lost in them make the next index run look at those photos again.
_CONCEPT_TABLES = {"concepts": "item_id", "concept_runs": "item_id", "photo_text": "rowid"}


def readable_schema(db: Database) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the tables, or a LibraryError when even the
    list of tables is unreadable (the first page is damaged)."""
    try:
        rows = db.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    except LibraryError as exc:
        raise LibraryError(
            f"{db.path} is too damaged to repair ({getattr(exc, 'reason', exc)}): restore "
            "it from a backup, or index your folders again into a new library"
        ) from None
    return [(name, sql or "") for name, sql in rows]


@dataclass
class _Copied:
    """One table's copy: rows copied, and the key ranges (exclusive) that were unreadable."""

    table: str
    key: str
    rows: int = 0
    lost: list[tuple[int | None, int | None]] = field(default_factory=list)


def salvage(source: Database, path: Path) -> list[str]:
    """Rebuild the file from its readable rows; the fresh file replaces the damaged one."""
    fresh = path.with_name(f"{path.name}.repairing")
    _remove_with_journals(fresh)
    Catalog(fresh, create=True).close()  # every table of this picsearch, empty
    target = sqlite3.connect(fresh, isolation_level=None)
    try:
        target.execute("BEGIN")
        copies = [_copy_table(source, target, name, sql) for name, sql in _plain_tables(source)]
        copies += [_copy_fts(source, target, name) for name in fts_tables(source)]
        _drop_orphans_and_lost_concepts(target, copies)
        target.execute("COMMIT")
    except BaseException:
        target.close()
        _remove_with_journals(fresh)
        raise
    target.close()
    source.close()
    # The old file's WAL must not be replayed onto the fresh file.
    _remove_with_journals(path, keep_main=True)
    os.replace(fresh, path)
    return _describe(copies)


def _plain_tables(source: Database) -> list[tuple[str, str]]:
    """Ordinary tables, without the shadow tables of full-text tables."""
    tables = readable_schema(source)
    virtual = [name for name, sql in tables if sql.upper().startswith("CREATE VIRTUAL")]
    return [
        (name, sql)
        for name, sql in tables
        if name not in virtual and not any(name.startswith(f"{v}_") for v in virtual)
    ]


def _copy_table(source: Database, target: sqlite3.Connection, table: str, sql: str) -> _Copied:
    source_columns = _columns(source, table)
    if not _columns(target, table):
        target.execute(sql)  # a table this picsearch does not make: keep it as it was
    columns = [c for c in _columns(target, table) if c in source_columns]
    key = _key(source, table, sql)
    names = ", ".join(f'"{c}"' for c in columns)
    return _copy_rows(source, target, table, key, names, _insert(table, columns))


def _insert(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    return f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({marks})'


def _copy_fts(source: Database, target: sqlite3.Connection, table: str) -> _Copied:
    """A full-text table: its text, from the table that stores it; the target's
    full-text index is built as the rows go in."""
    columns = _columns(target, table)
    content = f"{table}_content"
    stored = [c for c in _columns(source, content) if c != "id"]
    if not columns or len(stored) != len(columns):
        return _Copied(table, "rowid")
    insert = _insert(table, ["rowid", *columns])
    copied = _copy_rows(source, target, content, "id", ", ".join(["id", *stored]), insert)
    copied.table = table
    return copied


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f'PRAGMA table_info("{table}")').fetchall()]


def _key(source: Database, table: str, sql: str) -> str:
    """The column rows are read in order of: the rowid, else the first key column."""
    if "WITHOUT ROWID" not in sql.upper():
        return "rowid"
    info = source.execute(f'PRAGMA table_info("{table}")').fetchall()
    return next(f'"{row[1]}"' for row in sorted(info, key=lambda r: r[5]) if row[5] == 1)


def _copy_rows(
    source: Database, target: sqlite3.Connection, table: str, key: str, names: str, insert: str
) -> _Copied:
    """Copy rows in key order; at an unreadable stretch, find the next readable key
    and go on from there, noting the stretch as lost."""
    copied = _Copied(table, key)
    select = f'SELECT {key}, {names} FROM "{table}"'
    bound: _Bound = None
    while True:
        bound, ended = _copy_stretch(source, target, select, key, insert, bound, copied)
        if not ended:
            # SQLite reads a row ahead: the rows just before the damage come one by one.
            bound, ended = _copy_stretch(
                source, target, select, key, insert, bound, copied, one_by_one=True
            )
        if ended:
            return copied
        last = None if bound is None else bound[1]
        if last is not None and not isinstance(last, int):
            copied.lost.append((None, None))  # keys that cannot be stepped over
            return copied
        resume = _next_readable(source, f"{select} WHERE {key} >= ? ORDER BY {key}", last)
        copied.lost.append((last, resume))
        if resume is None:
            return copied
        bound = (">=", resume)


#: Where reading goes on: (">", the last key copied), (">=", a key found readable),
#: or None (from the first row).
_Bound = tuple[str, object] | None


def _copy_stretch(
    source: Database,
    target: sqlite3.Connection,
    select: str,
    key: str,
    insert: str,
    bound: _Bound,
    copied: _Copied,
    *,
    one_by_one: bool = False,
) -> tuple[_Bound, bool]:
    """Copy rows from ``bound`` on until the table ends or a row cannot be read
    (``one_by_one``: one query per row). Returns (where to go on, whether it ended)."""
    limit = " LIMIT 1" if one_by_one else ""
    while True:
        before = bound
        where, values = ("", ()) if bound is None else (f" WHERE {key} {bound[0]} ?", bound[1:])
        try:
            for row in source.execute(f"{select}{where} ORDER BY {key}{limit}", values):
                target.execute(insert, row[1:])
                copied.rows += 1
                bound = (">", row[0])
        except DamagedLibrary:
            return bound, False
        if not one_by_one or bound == before:
            return bound, True


def _next_readable(source: Database, select: str, after: int | None) -> int | None:
    """The first key past ``after`` whose rows can be read again (None: none left).
    Steps out in doubling strides until a seek succeeds, then halves back."""
    bad = _LOWEST if after is None else after
    stride = 1
    while True:
        probe = min(bad + stride, _HIGHEST)
        found = _probe(source, select, probe)
        if found is not _UNREADABLE or probe == _HIGHEST:
            break
        stride *= 2
    if found is _UNREADABLE:
        return None
    good = probe
    while good - bad > 1:
        middle = (bad + good) // 2
        result = _probe(source, select, middle)
        if result is _UNREADABLE:
            bad = middle
        else:
            good, found = middle, result
    return found  # type: ignore[return-value]


_UNREADABLE = object()


def _probe(source: Database, select: str, at: int) -> object:
    """The key of the first row at or after ``at`` (read whole: a seek alone can pass
    over a damaged page), None when there is none, or _UNREADABLE."""
    try:
        row = source.execute(f"{select} LIMIT 1", (at,)).fetchone()
    except DamagedLibrary:
        return _UNREADABLE
    return None if row is None else row[0]


def _drop_orphans_and_lost_concepts(target: sqlite3.Connection, copies: list[_Copied]) -> None:
    """Concept rows of photos that were lost go; photos whose concept rows were partly
    lost lose them all, so the next index run looks at them again."""
    for table, column in _CONCEPT_TABLES.items():
        target.execute(f"DELETE FROM {table} WHERE {column} NOT IN (SELECT id FROM items)")
    for copied in copies:
        if copied.table not in _CONCEPT_TABLES:
            continue
        for low, high in copied.lost:
            bounds = (_LOWEST if low is None else low, _HIGHEST if high is None else high)
            for table, column in _CONCEPT_TABLES.items():
                target.execute(f"DELETE FROM {table} WHERE {column} > ? AND {column} < ?", bounds)


def _describe(copies: list[_Copied]) -> list[str]:
    lines = []
    for copied in copies:
        for low, high in copied.lost:
            span = _span(low, high)
            if copied.table == "items":
                lines.append(
                    f"photos with ids {span} were unreadable and are gone: the next "
                    "'picsearch index' of their folders adds them again"
                )
            elif copied.table in _CONCEPT_TABLES:
                lines.append(
                    f"what was seen in the photos with ids {span} was unreadable: the next "
                    "'picsearch index' looks at them again"
                )
            else:
                lines.append(
                    f"rows of {copied.table} with keys {span} were unreadable and are gone"
                )
    kept = ", ".join(f"{c.rows} {c.table}" for c in copies if c.rows)
    return [f"copied every readable row into a fresh file ({kept or 'no rows'})", *lines]


def _span(low: int | None, high: int | None) -> str:
    """Keys strictly between ``low`` and ``high`` (None: no bound), for people."""
    if low is None and high is None:
        return "(all)"
    if low is None:
        return f"up to {high - 1}"  # type: ignore[operator]
    if high is None:
        return f"from {low + 1} on"
    return f"{low + 1} to {high - 1}"


def _remove_with_journals(path: Path, *, keep_main: bool = False) -> None:
    for name in ([] if keep_main else [str(path)]) + [f"{path}-wal", f"{path}-shm"]:
        Path(name).unlink(missing_ok=True)
