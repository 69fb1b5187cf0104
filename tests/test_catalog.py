"""The catalog's bulk writes, on a real library file: rows under the ids a writer chose."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from picsearch.catalog import Catalog, Row


def row(item_id: int, name: str) -> Row:
    return Row(
        id=item_id,
        path=f"/photos/{name}",
        size=10,
        mtime_ns=1_000,
        hash=f"{item_id:032x}",
        width=4,
        height=3,
        metadata={"caption": name},
    )


def test_whole_rows_keep_their_ids_in_one_generation(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "lib.db", create=True)
    catalog.bind_model("tiny", "tiny-1", 2, None)
    version = catalog.bump_generation()
    vectors = np.eye(2, dtype=np.float32)
    rows = [
        (row(7, "a.jpg"), vectors[0].tobytes(), None),
        (row(42, "b.jpg"), vectors[1].tobytes(), None),
    ]
    catalog.write_rows(rows, version=version)
    assert catalog.generation == version
    assert list(catalog.ids()) == [7, 42]
    stored = catalog.rows([42])[42]
    assert (stored.path, stored.hash, stored.metadata) == (
        "/photos/b.jpg",
        f"{42:032x}",
        {"caption": "b.jpg"},
    )
    ids, found = catalog.space_vectors("joint", 2, since=version - 1)
    assert list(ids) == [7, 42] and np.array_equal(found, vectors)
    catalog.write_rows([(row(7, "a2.jpg"), vectors[1].tobytes(), None)], version=version)
    assert catalog.count() == 2 and catalog.rows([7])[7].path == "/photos/a2.jpg"
    catalog.close()
