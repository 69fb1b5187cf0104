"""Browsing a library without a query: every photo newest first (a page at a time, by
keyset: each page starts after the last one's (capture time, id), never at an OFFSET),
the months they were taken in, their folders and their places, with counts.

A ``Browser`` has its own connection to the library file, so a server thread can hold
one beside its Library. The folder tree is read once and kept until the file changes
(``PRAGMA data_version`` and this connection's own changes tell).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..photo_info import file_time_info
from .file import Database, open_database
from .folders import FolderTree, folder_tree
from .rows import Row

__all__ = ["BROWSE_SCHEMA", "Browser", "Cursor", "Listed", "Month"]

#: Indexes the browse queries need: photos by place (and time within a place), and
#: by the month text of their capture time.
BROWSE_SCHEMA = """
CREATE INDEX IF NOT EXISTS photo_info_place ON photo_info(country, city, taken_ns);
CREATE INDEX IF NOT EXISTS photo_info_month ON photo_info(substr(taken, 1, 7), taken_ns);
-- A folder's photos by capture time without reading their rows.
CREATE INDEX IF NOT EXISTS photo_info_item_taken ON photo_info(item_id, taken_ns);
"""

T = TypeVar("T")

#: (capture time in Unix nanoseconds, id) of the last photo of a page: the next page
#: starts after it.
Cursor = tuple[int, int]

#: A folder holding more than this share of the library is listed by walking the
#: capture-time index; a smaller one by its paths, then sorted.
_LARGE_FOLDER = 0.2


@dataclass(frozen=True)
class Listed:
    """One photo of a page: what a thumbnail grid shows of it."""

    id: int
    path: str
    width: int
    height: int
    size: int
    taken: str
    taken_ns: int


@dataclass(frozen=True)
class Month:
    """A month photos were taken in ("2024-05", local time of the photo), how many,
    and the cursor that starts a page at its newest photo."""

    month: str
    count: int
    start: Cursor


_ITEM = "i.id, i.path_bytes, i.width, i.height, i.size"
#: The month of a capture time, as the month index has it.
_MONTH = "substr(taken, 1, 7)"


class Browser:
    """The browse queries over the library at ``path`` (its own connection)."""

    def __init__(self, path: Path) -> None:
        self._db: Database = open_database(path)
        self._kept_values: dict[str, Any] = {}
        self._state: tuple[int, int] | None = None
        # A read-only library from before it may lack the index.
        index = "SELECT 1 FROM sqlite_schema WHERE name = 'photo_info_item_taken'"
        self._item_taken_index = self._db.execute(index).fetchone() is not None

    def close(self) -> None:
        self._db.close()

    # -- the timeline ---------------------------------------------------------------
    def page(
        self,
        limit: int,
        *,
        after: Cursor | None = None,
        folder: bytes | None = None,
        country: str | None = None,
        city: str | None = None,
    ) -> list[Listed]:
        """Up to ``limit`` photos, newest first, after the cursor; only those under
        ``folder`` or taken in ``country`` (and ``city``) when given."""
        cursor = after or (2**63 - 1, 2**63 - 1)
        known = self._known_page(limit, cursor, folder, country, city)
        if country is None and self._rows_missing():
            known = sorted(
                known + self._file_time_page(limit, cursor, folder),
                key=lambda row: (row.taken_ns, row.id),
                reverse=True,
            )[:limit]
        return known

    def _known_page(
        self,
        limit: int,
        cursor: Cursor,
        folder: bytes | None,
        country: str | None,
        city: str | None,
    ) -> list[Listed]:
        where: list[str] = ["(p.taken_ns, p.item_id) < (?, ?)"]
        values: list[int | str | bytes] = [*cursor]
        source = "photo_info p"
        for column, value in (("country", country), ("city", city)):
            if value is not None:
                where.append(f"p.{column} = ?")
                values.append(value)
        if folder is not None:
            where.append("i.path_bytes >= ? AND i.path_bytes < ?")
            values += _prefix_range(folder)
            # CROSS JOIN fixes the loop order: the time index first (it gives the
            # order), unless the folder is small: its paths first, then sorted.
            photos = "photo_info p"
            if self._item_taken_index:  # SQLite would read the rows otherwise
                photos += " INDEXED BY photo_info_item_taken"
            order = (photos, "items i") if self._is_large(folder) else ("items i", photos)
            source = f"{order[0]} CROSS JOIN {order[1]} ON p.item_id = i.id"
        # Ids first, from the indexes alone; then the rows of the page's few photos.
        found = self._db.execute(
            f"SELECT p.item_id FROM {source} WHERE {' AND '.join(where)}"
            " ORDER BY p.taken_ns DESC, p.item_id DESC LIMIT ?",
            [*values, limit],
        ).fetchall()
        return self._listed_in_order([item_id for (item_id,) in found])

    def _listed_in_order(self, ids: list[int]) -> list[Listed]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT {_ITEM}, p.taken, p.taken_ns FROM items i JOIN photo_info p"
            f" ON p.item_id = i.id WHERE i.id IN ({marks})",
            ids,
        )
        listed = {row.id: row for row in map(_listed, rows)}
        return [listed[i] for i in ids if i in listed]

    def _file_time_page(self, limit: int, cursor: Cursor, folder: bytes | None) -> list[Listed]:
        """Photos with no photo_info row (an older library): known by their file time."""
        where: list[str] = ["(i.mtime_ns, i.id) < (?, ?)"]
        values: list[int | bytes] = [*cursor]
        if folder is not None:
            where.append("i.path_bytes >= ? AND i.path_bytes < ?")
            values += _prefix_range(folder)
        rows = self._db.execute(
            f"SELECT {_ITEM}, NULL, i.mtime_ns FROM items i WHERE {' AND '.join(where)}"
            " AND NOT EXISTS (SELECT 1 FROM photo_info p WHERE p.item_id = i.id)"
            " ORDER BY i.mtime_ns DESC, i.id DESC LIMIT ?",
            [*values, limit],
        )
        return [_listed(row) for row in rows]

    def _rows_missing(self) -> bool:
        """Whether some photo has no photo_info row (photo_info rows leave with their
        photo, so the counts tell)."""
        count = "SELECT (SELECT count(*) FROM items) - (SELECT count(*) FROM photo_info)"
        return bool(self._kept("missing", lambda: self._db.execute(count).fetchone()[0]))

    def _kept(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept until the library file changes (a commit by any
        connection changes data_version; this one's own writes, total_changes)."""
        state = (self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes)
        if state != self._state:
            self._kept_values.clear()
            self._state = state
        if name not in self._kept_values:
            self._kept_values[name] = compute()
        return self._kept_values[name]

    def months(self) -> list[Month]:
        """Every month with photos, newest first, with its count."""
        return self._kept("months", self._months)

    def _months(self) -> list[Month]:
        found = dict(self._known_months())
        if self._rows_missing():
            for row in self._file_time_page(2**62, (2**63 - 1, 2**63 - 1), None):
                count, newest = found.get(row.taken[:7], (0, row.taken_ns))
                found[row.taken[:7]] = (count + 1, max(newest, row.taken_ns))
        return [
            Month(month, count, (newest, 2**63 - 1))
            for month, (count, newest) in sorted(found.items(), reverse=True)
        ]

    def _known_months(self) -> Iterable[tuple[str, tuple[int, int]]]:
        """(month, (photos, newest capture time)), newest first: one month at a time
        down the month index (a GROUP BY would read every photo's row)."""
        month = "9999-99"
        while True:
            below = self._db.execute(
                f"SELECT {_MONTH} FROM photo_info WHERE {_MONTH} < ? ORDER BY {_MONTH} DESC"
                " LIMIT 1",
                (month,),
            ).fetchone()
            if below is None:
                return
            month = below[0]
            count, newest = self._db.execute(
                f"SELECT count(*), max(taken_ns) FROM photo_info WHERE {_MONTH} = ?", (month,)
            ).fetchone()
            yield month, (count, newest)

    # -- places -------------------------------------------------------------------------
    def places(self, country: str | None = None) -> list[tuple[str, int]]:
        """(country, photos) for every country, most photos first; with ``country``, its
        (city, photos)."""
        return self._kept(f"places:{country}", lambda: self._places(country))

    def _places(self, country: str | None) -> list[tuple[str, int]]:
        if country is None:
            rows = self._db.execute(
                "SELECT country, count(*) FROM photo_info WHERE country IS NOT NULL"
                " GROUP BY country"
            )
        else:
            rows = self._db.execute(
                "SELECT city, count(*) FROM photo_info WHERE country = ? AND city IS NOT NULL"
                " GROUP BY city",
                (country,),
            )
        return sorted(((str(name), int(count)) for name, count in rows), key=_most_first)

    # -- folders ------------------------------------------------------------------------
    def folders(self) -> FolderTree:
        """The folders of the library's photos, with counts (kept until the file changes)."""
        return self._kept("folders", self._folder_tree)

    def _folder_tree(self) -> FolderTree:
        paths = (bytes(p) for (p,) in self._db.execute("SELECT path_bytes FROM items"))
        return folder_tree(paths)

    def _is_large(self, folder: bytes) -> bool:
        tree = self.folders()
        return tree.count(folder) > _LARGE_FOLDER * max(tree.total, 1)

    # -- one photo's file -------------------------------------------------------------
    def stored(self, item_id: int) -> Row | None:
        """What serving the photo's file needs (path, size, content hash), or None."""
        found = self._db.execute(
            "SELECT id, path_bytes, size, mtime_ns, hash, width, height FROM items WHERE id = ?",
            (item_id,),
        ).fetchone()
        if found is None:
            return None
        found_id, path_bytes, size, mtime_ns, digest, width, height = found
        path = os.fsdecode(bytes(path_bytes))
        return Row(found_id, path, size, mtime_ns, digest, width, height, {})

    # -- moves --------------------------------------------------------------------------
    def move_logs(self) -> list[str]:
        """The move logs of the moves this library followed, the newest first."""
        rows = self._db.execute("SELECT log, max(id) FROM moves GROUP BY log ORDER BY 2 DESC")
        return [str(log) for log, _ in rows]


def _prefix_range(folder: bytes) -> list[bytes]:
    """[low, high): every path under ``folder`` (b"/" follows on, b"0" is next after it)."""
    base = folder.rstrip(b"/")
    return [base + b"/", base + b"0"]


def _most_first(entry: tuple[str, int]) -> tuple[int, str]:
    return -entry[1], entry[0]


def _listed(row: Iterable[Any]) -> Listed:
    item_id, path_bytes, width, height, size, taken, taken_ns = row
    if taken is None:  # known by its file time
        taken = file_time_info(taken_ns).taken.isoformat()
    return Listed(item_id, os.fsdecode(bytes(path_bytes)), width, height, size, taken, taken_ns)
