"""The items of a searcher file and the search filters over them.

Besides each item's id and metadata, a searcher keeps what the library's
filters read: each photo's file time (``items/mtime_ns.npy``) and what the
concept bank saw in it (``items/concepts.json``: the detectors that ran, the
concepts with their confidences, the words read). They are loaded and checked
once, and the filters and the full-text match run through the library's own
code (``Filters`` and ``ConceptStore`` over an in-memory SQLite copy), so a
searcher filters and ranks exactly as its library does.

Files exported before these parts existed still open; a filter that needs a
missing part is refused with a line saying to export the file again.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..concepts.base import Concept, Detections
from ..concepts.filters import Filters
from ..concepts.fusion import query_words, rank_text_only
from ..concepts.store import SCHEMA, ConceptStore, TextMatch
from ..errors import InvalidInput
from ..query import Moment, moment_ns
from .bundle import BundleReader

__all__ = ["CONCEPTS_PART", "MTIME_PART", "SearcherItems"]

IDS_PART = "items/ids.npy"
METADATA_PART = "items/metadata.json"
CONCEPTS_PART = "items/concepts.json"
MTIME_PART = "items/mtime_ns.npy"
#: What each kind of filter needs that older exports lack.
_OLDER = "{path} lacks (exported by an older picsearch): export it again with 'picsearch export'"


class SearcherItems:
    """Ids (ascending), metadata, and the optional filter data of a searcher's items."""

    def __init__(
        self,
        path: Path,
        ids: np.ndarray,
        metadata: list[dict[str, Any]],
        mtime_ns: np.ndarray | None,
        concepts: list[dict[str, Any] | None] | None,
    ) -> None:
        self.path = path
        self.ids = ids
        self.metadata = metadata
        self.mtime_ns = mtime_ns
        self.concepts = concepts
        self.has_text = any(c and c["text"] for c in concepts or [])
        self._store: ConceptStore | None = None
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------
    @classmethod
    def load(cls, bundle: BundleReader, count: int) -> SearcherItems:
        ids = _load_npy(bundle, IDS_PART)
        metadata = _load_json(bundle, METADATA_PART)
        if (
            ids.dtype != np.int64
            or ids.shape != (count,)
            or not isinstance(metadata, list)
            or len(metadata) != count
            or not all(isinstance(item, dict) for item in metadata)
            or np.any(np.diff(ids) <= 0)
        ):
            raise bundle.error(f"its item list does not hold the {count} items it declares")
        mtime_ns = _load_npy(bundle, MTIME_PART) if bundle.has(MTIME_PART) else None
        if mtime_ns is not None and (mtime_ns.dtype != np.int64 or mtime_ns.shape != (count,)):
            raise bundle.error(f"its file times do not hold the {count} items it declares")
        concepts = _load_json(bundle, CONCEPTS_PART) if bundle.has(CONCEPTS_PART) else None
        if concepts is not None:
            problem = _concepts_problem(concepts, count)
            if problem:
                raise bundle.error(f"its item concepts {problem}")
        return cls(bundle.path, ids, metadata, mtime_ns, concepts)

    def __len__(self) -> int:
        return len(self.ids)

    # -- one item ------------------------------------------------------------------
    def details(self, item_id: int) -> tuple[dict[str, Any], dict[str, float], str]:
        """(metadata, concepts, words read) of one item."""
        row = int(np.searchsorted(self.ids, item_id))
        seen = self.concepts[row] if self.concepts else None
        return (
            self.metadata[row],
            dict(seen["concepts"]) if seen else {},
            seen["text"] if seen else "",
        )

    # -- filters, as the library applies them --------------------------------------------
    def subset(
        self,
        folder: str | os.PathLike[str] | None,
        after: Moment | None,
        before: Moment | None,
        filters: Filters,
    ) -> np.ndarray | None:
        """Ids that pass every filter given (None: no filter)."""
        subsets = []
        if filters.any:
            subsets.append(self._concept_ids(filters))
        if folder is not None:
            subsets.append(self._ids_under(folder))
        if after is not None or before is not None:
            subsets.append(
                self._ids_between(moment_ns(after, "after"), moment_ns(before, "before"))
            )
        if not subsets:
            return None
        return functools.reduce(np.intersect1d, subsets)

    def _concept_ids(self, filters: Filters) -> np.ndarray:
        names = ("people", "has_text", "bw", "color")
        given = [name for name in names if getattr(filters, name) is not None]
        self._need_concepts(f"the {' and '.join(given)} filter" + "s" * (len(given) > 1))
        with self._store_locked() as store:
            try:
                return filters.ids(store)
            except InvalidInput as exc:
                raise InvalidInput(f"{exc}, then export {self.path} again") from None

    def _ids_under(self, folder: str | os.PathLike[str]) -> np.ndarray:
        prefix = os.path.abspath(os.path.expanduser(os.fspath(folder))).rstrip("/") + "/"
        paths = (item.get("path") for item in self.metadata)
        under = [isinstance(p, str) and p.startswith(prefix) for p in paths]
        return self.ids[np.array(under, dtype=bool)]

    def _ids_between(self, low: int | None, high: int | None) -> np.ndarray:
        if self.mtime_ns is None:
            raise InvalidInput("the date filters need the photos' file times, which " + self._older)
        keep = np.ones(len(self.ids), dtype=bool)
        if low is not None:
            keep &= self.mtime_ns >= low
        if high is not None:
            keep &= self.mtime_ns < high
        return self.ids[keep]

    def rank_by_concepts(
        self, filters: Filters, subset: np.ndarray | None
    ) -> list[tuple[float, int]]:
        """Filters alone: photos best first by their confidence in the wanted concepts."""
        with self._store_locked() as store:
            return filters.rank(store, subset)

    # -- words read in the photos -----------------------------------------------------------
    def text_only(self, text: str, subset: np.ndarray | None) -> list[tuple[float, int]]:
        """Photos ranked by the words of ``text`` found in them, as the library ranks them."""
        words = query_words(text)
        if not words:
            raise InvalidInput(f"no words to look for in {text!r}: words need 3 or more letters")
        self._need_concepts("a text-only search")
        with self._store_locked() as store:
            if not len(store.ids_seen_by("ocr")):
                raise InvalidInput(
                    f"no photo of {self.path} was read for words: index its library with "
                    "concepts 'full' (picsearch index FOLDER --concepts full), then export it again"
                )
            return rank_text_only(_within(store.match(words), subset))

    def text_matches(self, text: str, subset: np.ndarray | None) -> dict[int, TextMatch] | None:
        """Photos whose words hold some of the query's; None where the library would not
        look (no searchable word in the query, or no words read in any photo)."""
        words = query_words(text)
        if not words or not self.has_text:
            return None
        with self._store_locked() as store:
            return _within(store.match(words), subset)

    # -- the in-memory concept store --------------------------------------------------------
    @property
    def _older(self) -> str:
        return _OLDER.format(path=self.path)

    def _need_concepts(self, what: str) -> None:
        if self.concepts is None:
            raise InvalidInput(f"{what} needs what was seen in the photos, which {self._older}")

    @contextmanager
    def _store_locked(self) -> Iterator[ConceptStore]:
        """The concepts in the catalog's own tables, built on first use; one user at a time."""
        with self._lock:
            if self._store is None:
                self._store = _build_store(self.ids, self.concepts or [])
            yield self._store


def _build_store(ids: np.ndarray, concepts: list[dict[str, Any] | None]) -> ConceptStore:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    # The concept tables' trigger refers to the catalog's items table.
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, path_bytes BLOB)")
    db.executescript(SCHEMA)
    store = ConceptStore(db)
    with db:
        for item_id, seen in zip(ids.tolist(), concepts, strict=True):
            if seen is not None:
                found = tuple(Concept(name, c, "") for name, c in seen["concepts"].items())
                store.replace(item_id, Detections(found, seen["text"], tuple(seen["detectors"])))
    return store


def _within(matches: dict[int, TextMatch], subset: np.ndarray | None) -> dict[int, TextMatch]:
    if subset is None:
        return matches
    allowed = set(subset.tolist())
    return {i: m for i, m in matches.items() if i in allowed}


def _load_npy(bundle: BundleReader, name: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(bundle.read(name)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise bundle.error(f"part {name} is not a valid .npy array ({exc})") from None


def _load_json(bundle: BundleReader, name: str) -> Any:
    try:
        return json.loads(bundle.read(name))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bundle.error(f"part {name} is not valid JSON ({exc})") from None


def _concepts_problem(concepts: Any, count: int) -> str | None:
    """What is wrong with a loaded concepts part, or None."""
    if not isinstance(concepts, list) or len(concepts) != count:
        return f"do not hold the {count} items it declares"
    for row, seen in enumerate(concepts):
        if seen is not None and not _valid_seen(seen):
            return f"entry {row} is not a valid record of detectors, concepts and text"
    return None


def _valid_seen(seen: Any) -> bool:
    if not isinstance(seen, dict):
        return False
    detectors, found, text = seen.get("detectors"), seen.get("concepts"), seen.get("text")
    return (
        isinstance(detectors, list)
        and all(isinstance(d, str) and d and "," not in d for d in detectors)
        and isinstance(found, dict)
        and all(_is_confidence(c) for c in found.values())
        and isinstance(text, str)
    )


def _is_confidence(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 1
    )
