"""Repairing a damaged library from what is intact, after backing it up.

Before any change the file is copied to ``DB.bak-<time>`` (SQLite's backup API
copies pages as they are, damaged or not; a file SQLite cannot open at all is
copied byte for byte). Then:

- damaged pages: every readable row is copied into a fresh file, stepping over
  unreadable stretches, and the fresh file replaces the damaged one;
- a damaged full-text index is rebuilt from the stored text;
- meta values that do not parse are recomputed from the rows (dims from the
  vectors' sizes, the generation from the rows' versions);
- photo metadata that is not a JSON object becomes ``{}``;
- a photo whose vector has the wrong size is embedded again from its file, or
  takes the vectors of a photo with the same content; one whose file is gone is
  removed (the backup keeps it);
- the vector index folder (``DB.index``) is dropped: it is rebuilt on next use.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DamagedLibrary, LibraryError, ReadOnlyLibrary
from .check import (
    NOT_A_LIBRARY,
    PAGES,
    Problem,
    check_library,
    fts_problems,
    fts_tables,
    meta_problems,
    metadata_problems,
    parse_dims,
    vector_problems,
)
from .core import SCHEMA_VERSION, Catalog
from .file import Database, open_database

__all__ = ["RepairReport", "repair_library"]

_LOWEST, _HIGHEST = -(2**63), 2**63 - 1
#: Concept tables: rows lost in them make the next index run look at those photos again.
_CONCEPT_TABLES = {"concepts": "item_id", "concept_runs": "item_id", "photo_text": "rowid"}


@dataclass
class RepairReport:
    """What ``repair_library`` did (one line each), where the backup is, and what is
    still wrong afterwards (nothing, when the repair worked)."""

    path: Path
    backup: Path | None = None
    repaired: list[str] = field(default_factory=list)
    remaining: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining


def repair_library(path: str | os.PathLike[str]) -> RepairReport:
    """Check the library at ``path`` and repair what can be rebuilt from what is intact."""
    path = Path(path).expanduser()
    found = check_library(path)
    report = RepairReport(path)
    if found.ok:
        return report
    if NOT_A_LIBRARY in found.kinds():
        raise LibraryError(f"{path} is not a picsearch library: there is nothing to repair")
    db = open_database(path)
    try:
        if db.read_only:
            raise ReadOnlyLibrary(path)
        _readable_schema(db)
        report.backup = _backup(db, path)
        if PAGES in found.kinds():
            report.repaired += _salvage(db, path)
    finally:
        db.close()
    report.repaired += _drop_vector_index(path)
    report.repaired += _fix_rows_and_meta(path)
    report.remaining = check_library(path).problems
    return report


# -- the backup ----------------------------------------------------------------------
def _backup(db: Database, path: Path) -> Path:
    target = _unused(path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"))
    try:
        copy = sqlite3.connect(target)
        try:
            db.backup(copy)  # page by page, the WAL's last changes included
        finally:
            copy.close()
    except sqlite3.Error:
        target.unlink(missing_ok=True)
        shutil.copy2(path, target)
        wal = Path(f"{path}-wal")
        if wal.exists():
            shutil.copy2(wal, f"{target}-wal")
    return target


def _unused(path: Path) -> Path:
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


# -- damaged pages: copy what is readable into a fresh file ----------------------------
def _readable_schema(db: Database) -> list[tuple[str, str]]:
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


def _salvage(source: Database, path: Path) -> list[str]:
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
    tables = _readable_schema(source)
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


# -- rows and meta values ----------------------------------------------------------
def _fix_rows_and_meta(path: Path) -> list[str]:
    """Fix, in one transaction, what the rows of a readable file get wrong."""
    db = open_database(path)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            repaired = _fix_meta(db)
            repaired += _fix_metadata(db)
            stale, gone = _fix_vectors(db)
            repaired += gone
            _set_generation(db, stale)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        repaired += _rebuild_fts(db)
    finally:
        db.close()
    if stale:
        repaired += _embed_again(path, stale)
    return repaired


def _fix_meta(db: Database) -> list[str]:
    repaired = []
    for problem in meta_problems(db):
        if problem.key == "dims":
            repaired.append(_fix_dims(db))
        elif problem.key == "schema_version":
            _set_meta(db, "schema_version", str(SCHEMA_VERSION))
            repaired.append(f"set the schema version to {SCHEMA_VERSION}")
        elif problem.key == "generation":
            # _set_generation writes it, as in every repair.
            repaired.append("replaced the unreadable generation: readers reload the vectors")
    return repaired


def _fix_dims(db: Database) -> str:
    """The dims from the sizes most vectors have; a library without photos forgets its
    model binding instead, and binds again on its next index run."""
    joint = _common_size(db, "joint")
    if joint is None:
        db.execute("DELETE FROM meta WHERE key IN ('dims', 'model_id')")
        return "forgot the broken dims of an empty library: the next index run records them"
    dims = {"joint": joint, "visual": _common_size(db, "visual")}
    _set_meta(db, "dims", _json(dims))
    return f"recomputed the dims from the stored vectors: {_json(dims)}"


def _common_size(db: Database, column: str) -> int | None:
    row = db.execute(
        f"SELECT length({column}) AS size FROM items WHERE typeof({column}) = 'blob'"
        f" AND length({column}) > 0 AND length({column}) % 4 = 0"
        " GROUP BY size ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    return None if row is None else row[0] // 4


def _fix_metadata(db: Database) -> list[str]:
    problems = metadata_problems(db)
    db.executemany(
        "UPDATE items SET metadata = '{}' WHERE id = ?", [(p.item_id,) for p in problems]
    )
    if not problems:
        return []
    return [f"reset the unreadable metadata of {len(problems)} photos to {{}} (the backup has it)"]


def _fix_vectors(db: Database) -> tuple[list[tuple[int, str]], list[str]]:
    """Photos with vectors of the wrong size: those whose file is there get valid
    placeholder vectors and a state that makes the next index run embed them again;
    the others are removed. Returns ((id, path) to embed again, lines said)."""
    stored = db.execute("SELECT value FROM meta WHERE key = 'dims'").fetchone()
    if stored is None:
        return [], []
    dims = parse_dims(stored[0])
    stale, gone = [], []
    for problem in vector_problems(db, dims):
        item_id = problem.item_id
        path_bytes = db.execute("SELECT path_bytes FROM items WHERE id = ?", (item_id,)).fetchone()
        path = os.fsdecode(bytes(path_bytes[0]))
        if os.path.isfile(path):
            _placeholder(db, int(item_id or 0), dims)
            stale.append((int(item_id or 0), path))
        else:
            db.execute("DELETE FROM items WHERE id = ?", (item_id,))
            gone.append(
                f"removed photo {item_id} ({_shown(path)}): its vector was damaged and its file "
                "is gone (the backup keeps its row)"
            )
    return stale, gone


def _placeholder(db: Database, item_id: int, dims: dict[str, int | None]) -> None:
    # An impossible size and an empty hash: the next index run cannot take the file
    # for unchanged, nor for a copy of itself, and embeds it again under the same id.
    db.execute(
        "UPDATE items SET joint = zeroblob(?), visual = NULL, size = -1, hash = '' WHERE id = ?",
        (4 * int(dims["joint"] or 0), item_id),
    )


def _set_generation(db: Database, stale: list[tuple[int, str]]) -> None:
    """A generation above every row's, so readers with cached vectors catch up."""
    row = db.execute("SELECT max(version) FROM items").fetchone()
    generation = max(int(row[0] or 0), _stored_generation(db)) + 1
    db.executemany("UPDATE items SET version = ? WHERE id = ?", [(generation, i) for i, _ in stale])
    _set_meta(db, "generation", str(generation))


def _stored_generation(db: Database) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    text = "" if row is None else str(row[0]).strip()
    return int(text) if text.isdigit() else 0


def _rebuild_fts(db: Database) -> list[str]:
    repaired = []
    for problem in fts_problems(db):
        table = problem.key
        db.execute(f'INSERT INTO "{table}"("{table}") VALUES (\'rebuild\')')
        repaired.append(f"rebuilt the full-text index {table} from the stored text")
    return repaired


def _embed_again(path: Path, stale: Iterable[tuple[int, str]]) -> list[str]:
    """Index the files of the photos whose vectors were damaged, with the library's
    model; a photo that still has no vector afterwards is removed."""
    from ..library import Library

    stale = list(stale)
    with Library(path) as library:
        library.index([file for _, file in stale])
    db = open_database(path)
    try:
        left = [
            (i, f)
            for i, f in stale
            if db.execute("SELECT 1 FROM items WHERE id = ? AND hash = ''", (i,)).fetchone()
        ]
        for item_id, _ in left:
            db.execute("DELETE FROM items WHERE id = ?", (item_id,))
    finally:
        db.close()
    lines = [
        f"embedded photo {i} ({_shown(f)}) again from its file"
        for i, f in stale
        if (i, f) not in left
    ]
    lines += [
        f"removed photo {i} ({_shown(f)}): its vector was damaged and its file could not be "
        "read again (the backup keeps its row)"
        for i, f in left
    ]
    return lines


def _drop_vector_index(path: Path) -> list[str]:
    folder = Path(f"{path}.index")
    if not folder.exists():
        return []
    shutil.rmtree(folder)
    return [f"dropped the vector index {folder.name}: it is rebuilt on next use"]


def _set_meta(db: Database, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _json(value: object) -> str:
    return json.dumps(value)


def _shown(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")
