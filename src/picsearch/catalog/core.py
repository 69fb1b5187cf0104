"""The SQLite catalog: one row per image, with its file identity and embeddings."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..concepts.store import ConceptStore
from ..errors import DamagedLibrary, LibraryError, ModelMismatch, ReadOnlyLibrary
from .check import first_damage, parse_dims
from .file import Database, open_database
from .photos import PhotoStore
from .rows import (
    INSERT_WHOLE_ROWS,
    Row,
    RowWithVectors,
    display_path,
    parse_metadata,
    select_ids,
    stack_vectors,
    vector_blob,
    whole_rows,
)
from .schema import SCHEMA_VERSION, check_meta, check_tables, create_tables

__all__ = ["Catalog"]


class Catalog:
    """A library file. Writes commit in small transactions so a killed run loses little.

    A file that cannot be written (or whose folder cannot) opens read-only: reads
    work, writes raise ReadOnlyLibrary. A damaged file raises DamagedLibrary, at
    open when a meta value is broken, else when a damaged part is read.
    """

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        if not create and not path.exists():
            raise LibraryError(
                f"no library at {path}: build one with 'picsearch index FOLDER --db {path}'"
            )
        self._db: Database = open_database(path)
        self._verified = False  # checked for damage before writing (verify_writable)
        try:
            self.read_only = self._db.read_only
            if self.read_only:
                check_tables(self._db)
            else:
                create_tables(self._db, self.verify_writable)
            check_meta(self._db)
            self._check_schema()
        except BaseException:
            self._db.close()
            raise

    def verify_writable(self) -> None:
        """Before writing: refuse a read-only file, and a damaged one (writing into a
        damaged file can spread the damage). Reads the whole file, once per catalog:
        the first write calls it too."""
        if self.read_only:
            raise ReadOnlyLibrary(self.path)
        if self._verified:
            return
        damage = first_damage(self._db)
        if damage is not None:
            raise DamagedLibrary(self.path, damage.message)
        self._verified = True

    # -- meta -----------------------------------------------------------------
    def _check_schema(self) -> None:
        version = self.get_meta("schema_version")
        if version is None or int(version) < SCHEMA_VERSION:
            # Older files gained the tables they lack when the schema script ran.
            if not self.read_only:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.path} has schema version {version}, newer than this picsearch "
                f"understands ({SCHEMA_VERSION}): upgrade picsearch"
            )

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._writable()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def bind_model(self, spec: str, model_id: str, dim: int, visual_dim: int | None) -> None:
        """Record the model on first use; refuse a library made with another model."""
        stored = self.get_meta("model_id")
        if stored is None:
            with self.transaction():
                self.set_meta("model_spec", spec)
                self.set_meta("model_id", model_id)
                self.set_meta("dims", json.dumps({"joint": dim, "visual": visual_dim}))
        elif stored != model_id:
            raise self._mismatch(f"'{spec}' ({model_id})")

    def check_model_spec(self, spec: str) -> None:
        """Refuse, before loading any weights, a model other than the library's."""
        stored = self.model_spec
        if stored is not None and stored != spec:
            raise self._mismatch(f"'{spec}'")

    def _mismatch(self, asked: str) -> ModelMismatch:
        spec, model_id = self.model_spec, self.get_meta("model_id")
        return ModelMismatch(
            f"{self.path} was built with model '{spec}' ({model_id}), not {asked}: "
            f"pass --model {spec}, or use a new --db for the other model"
        )

    @property
    def model_spec(self) -> str | None:
        return self.get_meta("model_spec")

    @property
    def dims(self) -> dict[str, int | None]:
        """{"joint": N, "visual": M or None} of the bound model; {} before one is bound."""
        stored = self.get_meta("dims")
        if stored is None:
            return {}
        try:
            return parse_dims(stored)
        except ValueError as exc:
            raise DamagedLibrary(self.path, str(exc)) from None

    @property
    def concepts(self) -> ConceptStore:
        """The photos' concepts and OCR text, on this connection and its transactions."""
        return ConceptStore(self._db)

    @property
    def photos(self) -> PhotoStore:
        """When, where and with what each photo was taken, on this connection."""
        return PhotoStore(self._db)

    @property
    def generation(self) -> int:
        """Bumped by every write, so readers can tell when cached vectors are stale."""
        stored = self.get_meta("generation") or "0"
        if not stored.strip().isdigit():
            raise DamagedLibrary(self.path, f"'generation' is {stored[:40]!r}, not a number")
        return int(stored)

    # -- writes ---------------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyLibrary(self.path)
        if not self._verified and not self._db.in_transaction:
            self.verify_writable()

    def transaction(self) -> _Transaction:
        self._writable()
        return _Transaction(self._db)

    def bump_generation(self) -> int:
        """A new catalog generation, for the rows about to be written; returns it."""
        self._writable()
        self._db.execute(
            "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        return self.generation

    def upsert(
        self,
        *,
        path_bytes: bytes,
        size: int,
        mtime_ns: int,
        digest: str,
        width: int,
        height: int,
        joint: np.ndarray | bytes,
        visual: np.ndarray | bytes | None,
        metadata: dict[str, Any] | str | None = None,
    ) -> None:
        """Add or replace the row of ``path_bytes`` (its id stays when it existed)."""
        if not isinstance(metadata, str):
            metadata = json.dumps(metadata or {})
        self._db.execute(
            "INSERT INTO items (path_bytes, path, size, mtime_ns, hash, width, height,"
            " indexed_at, version, metadata, joint, visual) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path_bytes) DO UPDATE SET size=excluded.size,"
            " mtime_ns=excluded.mtime_ns, hash=excluded.hash, width=excluded.width,"
            " height=excluded.height, indexed_at=excluded.indexed_at,"
            " version=excluded.version, joint=excluded.joint,"
            # A changed photo keeps the metadata an application attached to its path.
            " metadata=CASE WHEN excluded.metadata = '{}' THEN items.metadata"
            " ELSE excluded.metadata END,"
            " visual=excluded.visual",
            (
                path_bytes,
                display_path(path_bytes),
                size,
                mtime_ns,
                digest,
                width,
                height,
                time.time(),
                self.bump_generation(),
                metadata,
                vector_blob(joint),
                vector_blob(visual),
            ),
        )

    def copy_from(self, source_id: int, *, path_bytes: bytes, size: int, mtime_ns: int) -> None:
        """Add or update ``path_bytes`` reusing the vectors of an item with the same content."""
        digest, width, height, metadata, joint, visual = self._db.execute(
            "SELECT hash, width, height, metadata, joint, visual FROM items WHERE id = ?",
            (source_id,),
        ).fetchone()
        self.upsert(
            path_bytes=path_bytes,
            size=size,
            mtime_ns=mtime_ns,
            digest=digest,
            width=width,
            height=height,
            joint=joint,
            visual=visual,
            metadata=metadata,
        )
        target = self.concepts.item_id(path_bytes)
        if target is not None:
            self.concepts.copy(source_id, target)
            self.photos.copy(source_id, target)

    def touch(self, item_id: int, *, size: int, mtime_ns: int) -> None:
        """Same content, new file times: update the identity, keep the vectors."""
        self._writable()
        self._db.execute(
            "UPDATE items SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, item_id)
        )

    def set_metadata(self, updates: Iterable[tuple[str, int]]) -> None:
        """(metadata JSON, item id) pairs. Vectors are untouched, so no new generation."""
        self._db.executemany("UPDATE items SET metadata = ? WHERE id = ?", list(updates))

    def relocate(
        self, old_path_bytes: bytes, new_path_bytes: bytes, *, size: int, mtime_ns: int
    ) -> int | None:
        """A file moved: its item takes the new path and keeps its id, vectors, concepts and
        metadata. Returns the id, or None when no item has the old path or the new path
        already has an item of its own (then nothing changes)."""
        found = self._db.execute(
            "SELECT id FROM items WHERE path_bytes = ?", (old_path_bytes,)
        ).fetchone()
        if found is None or self.has_path(new_path_bytes):
            return None
        self._db.execute(
            "UPDATE items SET path_bytes = ?, path = ?, size = ?, mtime_ns = ? WHERE id = ?",
            (new_path_bytes, display_path(new_path_bytes), size, mtime_ns, found[0]),
        )
        return int(found[0])

    def has_path(self, path_bytes: bytes) -> bool:
        """Whether an item has this path."""
        query = "SELECT 1 FROM items WHERE path_bytes = ?"
        return self._db.execute(query, (path_bytes,)).fetchone() is not None

    def record_move(
        self, *, log: str, item_id: int, old: bytes, new: bytes, sha256: str, back: bool = False
    ) -> None:
        """Journal one file move (``back``: an undo) beside the path change it made."""
        self._db.execute(
            "INSERT INTO moves (log, item, old_path, new_path, sha256, kind, at)"
            " VALUES (?,?,?,?,?,?,?)",
            (log, item_id, old, new, sha256, "moved back" if back else "moved", time.time()),
        )

    def write_rows(self, rows: Iterable[RowWithVectors], *, version: int) -> None:
        """Add or replace whole rows under the ids they carry, in one transaction, as
        written in generation ``version``. For a bulk writer (a Spark build) that fixes
        the ids and takes one generation for all its rows (``bump_generation``), where
        ``upsert`` takes one per row."""
        rows = list(rows)
        with self.transaction():
            self._db.executemany(INSERT_WHOLE_ROWS, whole_rows(rows, version))
            # A replaced row may be another photo: what was read of the old one goes.
            self.photos.forget(row.id for row, _, _ in rows)

    def remove(self, item_ids: Iterable[int]) -> int:
        ids = [(i,) for i in item_ids]
        if ids:
            self._writable()
            self._db.executemany("DELETE FROM items WHERE id = ?", ids)
            self.bump_generation()
        return len(ids)

    # -- reads ----------------------------------------------------------------
    def file_states(self) -> dict[bytes, tuple[int, int, int, str]]:
        """path_bytes → (id, size, mtime_ns, hash) for every item."""
        rows = self._db.execute("SELECT path_bytes, id, size, mtime_ns, hash FROM items")
        return {bytes(p): (i, s, m, h) for p, i, s, m, h in rows}

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def ids(self) -> np.ndarray:
        rows = self._db.execute("SELECT id FROM items ORDER BY id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def ids_under(self, folder_bytes: bytes) -> np.ndarray:
        """Ids of the items whose path lies under a folder."""
        prefix = folder_bytes.rstrip(b"/") + b"/"
        rows = self._db.execute(
            "SELECT id FROM items WHERE substr(path_bytes, 1, ?) = ?", (len(prefix), prefix)
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def ids_between(self, after_ns: int | None, before_ns: int | None) -> np.ndarray:
        """Ids of the items taken in [after_ns, before_ns) (None: open): the capture
        time read while indexing, else the file time."""
        return self.photos.ids_matching(after_ns=after_ns, before_ns=before_ns)

    def space_vectors(
        self, space: str, dim: int, *, since: int = 0, ids: Iterable[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of one space ("joint" or "visual"), for rows written after
        generation ``since``, or for the given ids."""
        column = {"joint": "joint", "visual": "visual"}[space]
        if ids is None:
            rows = self._db.execute(
                f"SELECT id, {column} FROM items WHERE version > ? ORDER BY id", (since,)
            ).fetchall()
        else:
            rows = list(select_ids(self._db, f"SELECT id, {column} FROM items", ids))
        found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return found, stack_vectors(self.path, rows, dim, space)

    def rows(self, item_ids: Iterable[int]) -> dict[int, Row]:
        """The rows of these ids, each with what is known of when and where it was taken."""
        select = "SELECT id, path_bytes, size, mtime_ns, hash, width, height, metadata FROM items"
        found = {
            i: Row(i, os.fsdecode(bytes(p)), s, m, h, w, hh, parse_metadata(self.path, i, meta))
            for i, p, s, m, h, w, hh, meta in select_ids(self._db, select, item_ids)
        }
        photos = self.photos.get((i, row.mtime_ns) for i, row in found.items())
        return {i: replace(row, photo=photos[i].fields()) for i, row in found.items()}

    def iter_paths(self) -> Iterator[tuple[int, bytes]]:
        for item_id, path_bytes in self._db.execute("SELECT id, path_bytes FROM items"):
            yield item_id, bytes(path_bytes)

    def size_on_disk(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )

    def close(self) -> None:
        self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
