"""The catalog's photo_info table: when, where and with what each photo was taken,
as indexing read it, with the filters on it. A trigger drops a photo's row when the
photo leaves; a photo without a row is known by its file time."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..photo_info import PhotoInfo, file_time_info, fold

__all__ = ["PHOTO_SCHEMA", "PhotoStore"]

PHOTO_SCHEMA = """
CREATE TABLE IF NOT EXISTS photo_info (
    item_id INTEGER PRIMARY KEY,
    taken TEXT NOT NULL,               -- ISO 8601 with its offset
    taken_ns INTEGER NOT NULL,         -- the same moment as Unix nanoseconds
    taken_source TEXT NOT NULL,        -- 'exif', 'xmp' or 'file'
    camera TEXT,
    lens TEXT,
    latitude REAL,
    longitude REAL,
    city TEXT,
    region TEXT,
    country TEXT,
    place_key TEXT NOT NULL DEFAULT '',  -- '|city|region|country|', folded for matching
    camera_key TEXT NOT NULL DEFAULT ''  -- camera, folded for matching
);
CREATE INDEX IF NOT EXISTS photo_info_taken ON photo_info(taken_ns);
-- Photos without a row are known by their file time: filtered on it without reading
-- their rows (which hold the vectors).
CREATE INDEX IF NOT EXISTS items_mtime ON items(mtime_ns);
CREATE TRIGGER IF NOT EXISTS items_drop_photo_info AFTER DELETE ON items BEGIN
    DELETE FROM photo_info WHERE item_id = old.id;
END;
"""

_COLUMNS = (
    "taken, taken_ns, taken_source, camera, lens, latitude, longitude,"
    " city, region, country, place_key, camera_key"
)

#: The capture time of every photo: the file's time where none was read.
_TAKEN_NS = "COALESCE(p.taken_ns, i.mtime_ns)"
_JOINED = "FROM items i LEFT JOIN photo_info p ON p.item_id = i.id"


class PhotoStore:
    """The photo_info rows, on the catalog's connection and its transactions."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def replace(self, item_id: int, info: PhotoInfo) -> None:
        place = (info.city, info.region, info.country)
        place_key = "|" + "|".join(fold(name or "") for name in place) + "|"
        values = (
            info.taken.isoformat(),
            info.taken_ns,
            info.taken_source,
            info.camera,
            info.lens,
            info.latitude,
            info.longitude,
            *place,
            place_key,
            fold(info.camera or ""),
        )
        marks = ",".join("?" * (len(values) + 1))
        self._db.execute(
            f"INSERT OR REPLACE INTO photo_info (item_id, {_COLUMNS}) VALUES ({marks})",
            (item_id, *values),
        )

    def copy(self, source_id: int, target_id: int) -> None:
        """The same content under another path: what its EXIF says holds there too
        (a time read from the source's file is not the target's: that one is left out)."""
        self._db.execute("DELETE FROM photo_info WHERE item_id = ?", (target_id,))
        self._db.execute(
            f"INSERT INTO photo_info (item_id, {_COLUMNS}) SELECT ?, {_COLUMNS}"
            " FROM photo_info WHERE item_id = ? AND taken_source != 'file'",
            (target_id, source_id),
        )

    def forget(self, item_ids: Iterable[int]) -> None:
        """These photos are known by their file time again."""
        ids = [(int(i),) for i in item_ids]
        self._db.executemany("DELETE FROM photo_info WHERE item_id = ?", ids)

    def get(self, items: Iterable[tuple[int, int]]) -> dict[int, PhotoInfo]:
        """(id, mtime_ns) pairs → what is known of each photo (its file time at least)."""
        mtimes = dict(items)
        select = f"SELECT item_id, {_COLUMNS} FROM photo_info"
        stored = {row[0]: _info(row[1:]) for row in _select_items(self._db, select, list(mtimes))}
        return {i: stored.get(i) or file_time_info(mtime) for i, mtime in mtimes.items()}

    def ids_matching(self, **filters: Any) -> np.ndarray:
        """Ids of the photos taken in [after_ns, before_ns) at ``place`` (a city, region
        or country) with ``camera`` (part of its make and model), in id order."""
        taken, values = _taken_matching(**filters)
        rows = self._db.execute(f"SELECT id FROM ({taken}) ORDER BY id", values)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def newest(self, limit: int, **filters: Any) -> list[int]:
        """The ``limit`` most recently taken photos that ``filters`` (as ``ids_matching``
        takes them) allow: one query, sorted by SQLite."""
        taken, values = _taken_matching(**filters)
        rows = self._db.execute(
            f"SELECT id FROM ({taken}) ORDER BY taken_ns DESC, id LIMIT ?", [*values, limit]
        )
        return [r[0] for r in rows]

    def place_names(self) -> list[str]:
        """Every city, region and country name the photos were taken in, sorted."""
        rows = self._db.execute(
            "SELECT city FROM photo_info UNION SELECT region FROM photo_info"
            " UNION SELECT country FROM photo_info"
        )
        return sorted(name for (name,) in rows if name)

    def newest_first(self, item_ids: Iterable[int]) -> list[int]:
        """These photos, the most recently taken first."""
        select = f"SELECT i.id, {_TAKEN_NS} {_JOINED}"
        rows = list(_select_items(self._db, select, item_ids, column="i.id"))
        return [i for i, _ in sorted(rows, key=lambda row: (-row[1], row[0]))]


def _taken_matching(
    *,
    place: str | None = None,
    camera: str | None = None,
    after_ns: int | None = None,
    before_ns: int | None = None,
) -> tuple[str, list[int | str]]:
    """A SELECT of (id, taken_ns) of the photos these filters allow: those with a
    photo_info row by what it says, the others (unless a place or camera is asked for,
    which they cannot have) by their file time. Neither part reads the items' rows."""
    where, values = _between("taken_ns", after_ns, before_ns)
    if place is not None:
        where.append("instr(place_key, ?) > 0")
        values.append(f"|{fold(place)}|")
    if camera is not None:
        where.append("instr(camera_key, ?) > 0")
        values.append(fold(camera))
    known = f"SELECT item_id AS id, taken_ns FROM photo_info WHERE {' AND '.join(where)}"
    if place is not None or camera is not None:
        return known, values
    file_dates, file_values = _between("mtime_ns", after_ns, before_ns)
    unknown = "SELECT id, mtime_ns AS taken_ns FROM items WHERE " + " AND ".join(
        [*file_dates, "id NOT IN (SELECT item_id FROM photo_info)"]
    )
    return f"{known} UNION ALL {unknown}", [*values, *file_values]


def _between(
    column: str, after_ns: int | None, before_ns: int | None
) -> tuple[list[str], list[int | str]]:
    where: list[str] = ["1"]
    values: list[int | str] = []
    if after_ns is not None:
        where.append(f"{column} >= ?")
        values.append(after_ns)
    if before_ns is not None:
        where.append(f"{column} < ?")
        values.append(before_ns)
    return where, values


def _select_items(
    db: sqlite3.Connection, select: str, item_ids: Iterable[int], column: str = "item_id"
) -> Iterable[tuple[Any, ...]]:
    ids = [int(i) for i in item_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        yield from db.execute(f"{select} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)


_STORED = ("camera", "lens", "latitude", "longitude", "city", "region", "country")


def _info(row: tuple[Any, ...]) -> PhotoInfo:
    # Columns: taken, taken_ns, source, then the optional fields named in _STORED.
    fields = dict(zip(_STORED, row[3:10], strict=True))
    return PhotoInfo(dt.datetime.fromisoformat(str(row[0])), str(row[2]), **fields)
