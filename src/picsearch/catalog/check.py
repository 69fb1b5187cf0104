"""Finding damage in a library file: SQLite's own page checks, the full-text index's
check, and picsearch's invariants (meta values parse, vectors have the stored size,
photo metadata is a JSON object).

Each finding is a ``Problem`` with a one-line message; ``picsearch check`` prints
them and ``picsearch.catalog.repair`` fixes what it can.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DamagedLibrary, LibraryError
from .file import Database, open_database

__all__ = [
    "Problem",
    "CheckReport",
    "check_library",
    "first_damage",
    "ensure_sound",
    "meta_problems",
    "parse_dims",
    "fts_tables",
    "PAGES",
    "FTS",
    "META",
    "VECTORS",
    "METADATA",
    "NOT_A_LIBRARY",
]

#: Problem kinds: damaged SQLite pages; a damaged full-text index; a bad meta value;
#: a vector blob of the wrong size; photo metadata that is not a JSON object; an
#: SQLite file that is not a library at all.
PAGES, FTS, META, VECTORS, METADATA = "pages", "fts", "meta", "vectors", "metadata"
NOT_A_LIBRARY = "not a library"

_MAX_PAGE_MESSAGES = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a library: its kind, a one-line message, and for row
    problems the photo id (meta problems: the key; full-text problems: the table)."""

    kind: str
    message: str
    item_id: int | None = None
    key: str | None = None


@dataclass
class CheckReport:
    """What ``check_library`` found. ``notes`` are things it could not check."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {problem.kind for problem in self.problems}


def check_library(path: str | Path, *, quick: bool = False) -> CheckReport:
    """Everything wrong with the library at ``path`` (``quick``: SQLite's quick check
    instead of its full one, which also compares every index with its table)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LibraryError(f"no library at {path}: check the --db path")
    report = CheckReport(path)
    db = open_database(path)
    try:
        _check(db, report, quick=quick)
    finally:
        db.close()
    return report


def _check(db: Database, report: CheckReport, *, quick: bool) -> None:
    report.problems += page_problems(db, quick=quick)
    if any(p.message.startswith("not a database") for p in report.problems):
        return  # nothing else can be read
    foreign = _not_a_library(db)
    if foreign is not None:
        report.problems.append(foreign)
        return
    for find in (meta_problems, _vector_problems_of, metadata_problems):
        try:
            report.problems += find(db)
        except LibraryError as exc:
            # Damaged pages make a table unreadable: said once, by the page check.
            if PAGES not in report.kinds():
                report.problems.append(Problem(PAGES, _reason(exc)))
    if db.read_only:
        report.notes.append("the full-text index was not checked: the library is read-only")
    else:
        report.problems += fts_problems(db)


def ensure_sound(path: str | Path) -> None:
    """Raise DamagedLibrary with the first problem the quick checks find, if any."""
    report = check_library(path, quick=True)
    if report.problems:
        raise DamagedLibrary(Path(path).expanduser(), report.problems[0].message)


def first_damage(db: Database) -> Problem | None:
    """The first problem found by the quick checks (pages, meta, vectors, metadata,
    full-text index), or None. What runs before a library is written."""
    for find in (_quick_pages, meta_problems, _vector_problems_of, metadata_problems):
        try:
            found = find(db)
        except LibraryError as exc:
            return Problem(PAGES, _reason(exc))
        if found:
            return found[0]
    if not db.read_only:
        found = fts_problems(db)
        if found:
            return found[0]
    return None


def _not_a_library(db: Database) -> Problem | None:
    try:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_schema")}
    except LibraryError:
        return None  # a damaged schema page: the page check said so
    missing = sorted({"meta", "items"} - names)
    if not missing:
        return None
    return Problem(NOT_A_LIBRARY, f"it has no {missing[0]} table: not made by picsearch")


# -- SQLite's page checks ---------------------------------------------------------
def page_problems(db: Database, *, quick: bool) -> list[Problem]:
    """SQLite's integrity (or quick) check, one problem per line it reports."""
    pragma = "quick_check" if quick else "integrity_check"
    try:
        rows = db.execute(f"PRAGMA {pragma}({_MAX_PAGE_MESSAGES})").fetchall()
    except LibraryError as exc:
        # SQLite gives up on some damage (a zeroed page) instead of describing it.
        reason = _reason(exc)
        if "not a database" in reason:
            return [Problem(PAGES, f"not a database: {reason}")]
        return _unreadable_tables(db) or [Problem(PAGES, reason)]
    return [Problem(PAGES, f"SQLite: {row[0]}") for row in rows if row[0] != "ok"]


def _unreadable_tables(db: Database) -> list[Problem]:
    """The tables that cannot be read to their end."""
    problems = []
    names = db.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
    ).fetchall()
    for (name,) in names:
        try:
            for _ in db.execute(f'SELECT * FROM "{name}"'):
                pass
        except LibraryError as exc:
            problems.append(Problem(PAGES, f"table {name} has unreadable pages ({_reason(exc)})"))
    return problems


def _quick_pages(db: Database) -> list[Problem]:
    return page_problems(db, quick=True)


# -- the full-text index -------------------------------------------------------------
def fts_tables(db: sqlite3.Connection) -> list[str]:
    """The FTS5 tables of a library (photo_text)."""
    rows = db.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'"
        " AND lower(sql) LIKE '%using fts5%'"
    ).fetchall()
    return [row[0] for row in rows]


def fts_problems(db: Database) -> list[Problem]:
    """FTS5's own integrity check of each full-text table. It is an INSERT, so it runs
    in a write transaction that is rolled back: nothing is written."""
    problems = []
    try:
        tables = fts_tables(db)
    except LibraryError as exc:
        return [Problem(PAGES, _reason(exc))]
    for table in tables:
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(f'INSERT INTO "{table}"("{table}") VALUES (\'integrity-check\')')
        except LibraryError as exc:
            message = f"the full-text index {table} fails its check: {_reason(exc)}"
            problems.append(Problem(FTS, message, key=table))
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
    return problems


# -- meta values ---------------------------------------------------------------------
def parse_dims(text: str) -> dict[str, int | None]:
    """The stored ``dims`` meta value: {"joint": N, "visual": M or None}; ValueError
    saying what is wrong when it is not that."""
    try:
        dims = json.loads(text)
    except ValueError:
        raise ValueError(f"'dims' is {text[:40]!r}, not JSON") from None
    if not isinstance(dims, dict) or not _positive(dims.get("joint")):
        raise ValueError(f'\'dims\' is {text[:40]!r}, not {{"joint": N, "visual": M}}')
    visual = dims.get("visual")
    if visual is not None and not _positive(visual):
        raise ValueError(f"'dims' has visual {visual!r}, not a positive number or null")
    return {"joint": dims["joint"], "visual": visual}


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def meta_problems(db: sqlite3.Connection) -> list[Problem]:
    """Meta values every command reads that do not parse."""
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    problems = []
    for key in ("schema_version", "generation"):
        value = meta.get(key)
        if value is not None and not _is_count(value):
            problems.append(Problem(META, f"'{key}' is {str(value)[:40]!r}, not a number", key=key))
    if meta.get("dims") is not None:
        try:
            parse_dims(str(meta["dims"]))
        except ValueError as exc:
            problems.append(Problem(META, str(exc), key="dims"))
    return problems


def _is_count(value: object) -> bool:
    return isinstance(value, int | str) and str(value).strip().isdigit()


# -- rows ------------------------------------------------------------------------------
def _vector_problems_of(db: Database) -> list[Problem]:
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key = 'dims'").fetchall())
    try:
        dims = parse_dims(str(meta["dims"])) if "dims" in meta else None
    except ValueError:
        return []  # reported by meta_problems; sizes cannot be judged without dims
    return vector_problems(db, dims)


def vector_problems(db: sqlite3.Connection, dims: dict[str, int | None] | None) -> list[Problem]:
    """Photos whose stored vectors are not float32 blobs of the library's dimensions."""
    if dims is None:
        return []
    joint, visual = 4 * int(dims["joint"] or 0), 4 * int(dims["visual"] or 0)
    rows = db.execute(
        "SELECT id, path, typeof(joint), length(joint), typeof(visual), length(visual)"
        " FROM items WHERE typeof(joint) != 'blob' OR length(joint) != :joint"
        " OR (visual IS NOT NULL AND (typeof(visual) != 'blob' OR length(visual) != :visual))",
        {"joint": joint, "visual": visual},
    ).fetchall()
    problems = []
    for item_id, path, joint_type, joint_size, visual_type, visual_size in rows:
        if joint_type != "blob" or joint_size != joint:
            wrong = _size(joint_type, joint_size, joint, "joint")
        else:
            wrong = _size(visual_type, visual_size, visual, "visual")
        problems.append(Problem(VECTORS, f"photo {item_id} ({path}): {wrong}", item_id=item_id))
    return problems


def _size(kind: str, size: int | None, wanted: int, space: str) -> str:
    if not wanted:
        return f"it has a {space} vector but the library has no {space} space"
    if kind != "blob":
        return f"its {space} vector is {kind}, not {wanted} bytes"
    return f"its {space} vector has {size} bytes, not {wanted}"


def metadata_problems(db: sqlite3.Connection) -> list[Problem]:
    """Photos whose metadata is not a JSON object."""
    rows = db.execute(
        "SELECT id, path FROM items WHERE CASE WHEN json_valid(metadata)"
        " THEN json_type(metadata) != 'object' ELSE 1 END"
    ).fetchall()
    return [
        Problem(METADATA, f"photo {item_id} ({path}): its metadata is not a JSON object", item_id)
        for item_id, path in rows
    ]


def _reason(exc: LibraryError) -> str:
    """What SQLite said, for a damaged file; else the whole message."""
    return exc.reason if isinstance(exc, DamagedLibrary) else str(exc)
