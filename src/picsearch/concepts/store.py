"""The catalog's concept tables: each photo's concepts, which detectors saw it, and the
words read in it in an SQLite FTS5 full-text index. They live on the catalog's
connection and transactions; a trigger drops a photo's rows when the photo leaves.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .base import Concept, Detections

__all__ = ["SCHEMA", "ConceptStore", "Stored", "TextMatch"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS concepts (
    item_id INTEGER NOT NULL,
    name TEXT NOT NULL,                -- person, face, group, text, bw, color:red, object:car, ...
    confidence REAL NOT NULL,          -- 0..1
    phrase TEXT NOT NULL,              -- the words embedded for it
    PRIMARY KEY (item_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS concepts_by_name ON concepts(name, confidence);
CREATE TABLE IF NOT EXISTS concept_runs (
    item_id INTEGER PRIMARY KEY,
    detectors TEXT NOT NULL            -- the detectors that looked at the photo, comma-separated
);
-- Trigram tokens: OCR often drops or merges word breaks, so words match as substrings.
CREATE VIRTUAL TABLE IF NOT EXISTS photo_text USING fts5(text, tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS items_drop_concepts AFTER DELETE ON items BEGIN
    DELETE FROM concepts WHERE item_id = old.id;
    DELETE FROM concept_runs WHERE item_id = old.id;
    DELETE FROM photo_text WHERE rowid = old.id;
END;
"""


@dataclass(frozen=True)
class Stored:
    """One photo's stored concepts."""

    detectors: tuple[str, ...]
    concepts: tuple[Concept, ...]
    text: str

    def confidences(self) -> dict[str, float]:
        return {c.name: c.confidence for c in self.concepts}


@dataclass(frozen=True)
class TextMatch:
    """How well a photo's words match a query's: the share of query words found, and bm25."""

    coverage: float
    bm25: float


class ConceptStore:
    """Reads and writes the concept tables on an open catalog connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # -- writes (inside the catalog's transaction) ---------------------------
    def replace(self, item_id: int, found: Detections | None) -> None:
        """Store what the detectors found for a photo (None: forget its concepts)."""
        self.replace_many([(item_id, found)])

    def replace_many(self, photos: Iterable[tuple[int, Detections | None]]) -> None:
        """``replace`` for many photos, a statement per table (what a bulk writer needs)."""
        photos = list(photos)
        ids = [(item_id,) for item_id, _ in photos]
        self._db.executemany("DELETE FROM concepts WHERE item_id = ?", ids)
        self._db.executemany("DELETE FROM concept_runs WHERE item_id = ?", ids)
        self._db.executemany("DELETE FROM photo_text WHERE rowid = ?", ids)
        seen = [(item_id, found) for item_id, found in photos if found and found.detectors]
        self._db.executemany(
            "INSERT INTO concepts VALUES (?, ?, ?, ?)",
            [(i, c.name, c.confidence, c.phrase) for i, found in seen for c in found.concepts],
        )
        self._db.executemany(
            "INSERT INTO concept_runs VALUES (?, ?)",
            [(i, ",".join(found.detectors)) for i, found in seen],
        )
        self._db.executemany(
            "INSERT INTO photo_text (rowid, text) VALUES (?, ?)",
            [(i, found.text) for i, found in seen if found.text],
        )

    def copy(self, source_id: int, target_id: int) -> None:
        """A renamed or copied photo keeps the concepts of the same content."""
        if source_id == target_id:
            return
        stored = self.get([source_id]).get(source_id)
        self.replace(
            target_id,
            None if stored is None else Detections(stored.concepts, stored.text, stored.detectors),
        )

    # -- reads -----------------------------------------------------------------
    def item_id(self, path_bytes: bytes) -> int | None:
        row = self._db.execute(
            "SELECT id FROM items WHERE path_bytes = ?", (path_bytes,)
        ).fetchone()
        return None if row is None else int(row[0])

    def get(self, item_ids: Iterable[int]) -> dict[int, Stored]:
        """The stored concepts of the photos that were looked at (others are left out)."""
        ids = [int(i) for i in item_ids]
        runs = dict(self._in("SELECT item_id, detectors FROM concept_runs", "item_id", ids))
        concepts: dict[int, list[Concept]] = {i: [] for i in runs}
        select = "SELECT item_id, name, confidence, phrase FROM concepts"
        for item_id, name, confidence, phrase in self._in(select, "item_id", list(runs)):
            concepts[item_id].append(Concept(name, confidence, phrase))
        texts = dict(self._in("SELECT rowid, text FROM photo_text", "rowid", list(runs)))
        return {
            i: Stored(
                tuple(runs[i].split(",")) if runs[i] else (),
                tuple(sorted(concepts[i], key=lambda c: (-c.confidence, c.name))),
                texts.get(i, ""),
            )
            for i in runs
        }

    def _in(self, select: str, column: str, ids: list[int]) -> Iterable[tuple]:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(f"{select} WHERE {column} IN ({marks})", chunk)

    def detectors_by_item(self) -> dict[int, frozenset[str]]:
        rows = self._db.execute("SELECT item_id, detectors FROM concept_runs")
        return {i: frozenset(d.split(",")) for i, d in rows}

    def ids_with(self, name: str, min_confidence: float = 0.0) -> np.ndarray:
        rows = self._db.execute(
            "SELECT item_id FROM concepts WHERE name = ? AND confidence >= ? ORDER BY item_id",
            (name, min_confidence),
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def ids_seen_by(self, detector: str) -> np.ndarray:
        """Photos a detector looked at (whether or not it found anything)."""
        rows = self._db.execute(
            "SELECT item_id FROM concept_runs WHERE instr(',' || detectors || ',', ?) > 0"
            " ORDER BY item_id",
            (f",{detector},",),
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def has_text(self) -> bool:
        return self._db.execute("SELECT 1 FROM photo_text LIMIT 1").fetchone() is not None

    def match(self, words: list[str]) -> dict[int, TextMatch]:
        """Photos whose text holds any of ``words`` (3+ characters each), with the share found."""
        found: dict[int, list[float]] = {}
        for word in words:
            quoted = '"' + word.replace('"', '""') + '"'
            rows = self._db.execute(
                "SELECT rowid, bm25(photo_text) FROM photo_text WHERE photo_text MATCH ?",
                (quoted,),
            )
            for item_id, score in rows:
                found.setdefault(int(item_id), []).append(float(score))
        return {
            item_id: TextMatch(len(scores) / len(words), sum(scores))
            for item_id, scores in found.items()
        }
