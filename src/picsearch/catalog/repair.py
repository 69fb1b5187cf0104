"""Repairing a damaged library file from what is intact, after backing it up: the steps
that need no model. ``picsearch.library.repair.repair_library`` runs them in order, and
embeds the photos whose vectors were damaged again with the library's model.

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
from dataclasses import dataclass, field
from pathlib import Path

from ..display import path_text
from ..errors import LibraryError, ReadOnlyLibrary
from .check import (
    NOT_A_LIBRARY,
    PAGES,
    Problem,
    check_library,
    fts_problems,
    meta_problems,
    metadata_problems,
    parse_dims,
    vector_problems,
)
from .file import Database, open_database
from .salvage import readable_schema, salvage
from .schema import SCHEMA_VERSION

__all__ = [
    "RepairReport",
    "begin_repair",
    "drop_vector_index",
    "fix_rows_and_meta",
    "remove_unembedded",
]


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


def begin_repair(path: Path) -> RepairReport | None:
    """Check the library at ``path``: None when it is sound. Else refuse a file that
    cannot be repaired (not a library, read-only, unreadable), back it up, and copy
    what is readable of damaged pages into a fresh file."""
    found = check_library(path)
    if found.ok:
        return None
    if NOT_A_LIBRARY in found.kinds():
        raise LibraryError(f"{path} is not a picsearch library: there is nothing to repair")
    report = RepairReport(path)
    db = open_database(path)
    try:
        if db.read_only:
            raise ReadOnlyLibrary(path)
        readable_schema(db)
        report.backup = _backup(db, path)
        if PAGES in found.kinds():
            report.repaired += salvage(db, path)
    finally:
        db.close()
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


# -- rows and meta values ----------------------------------------------------------
def fix_rows_and_meta(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """Fix, in one transaction, what the rows of a readable file get wrong. Returns the
    lines said, and (id, file) of the photos to embed again (their vectors were damaged:
    they hold placeholders until then)."""
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
    return repaired, stale


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
                f"removed photo {item_id} ({path_text(path)}): its vector was damaged and its file "
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


def remove_unembedded(path: Path, stale: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Remove the photos of ``stale`` that still hold placeholder vectors (their files
    could not be embedded again); returns them."""
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
    return left


def drop_vector_index(path: Path) -> list[str]:
    folder = Path(f"{path}.index")
    if not folder.exists():
        return []
    shutil.rmtree(folder)
    return [f"dropped the vector index {folder.name}: it is rebuilt on next use"]


def _set_meta(db: Database, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _json(value: object) -> str:
    return json.dumps(value)
