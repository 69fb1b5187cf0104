"""Damaged libraries: every command fails with one line that names the file and the
repair command, without writing; ``picsearch check`` finds each damage and
``--repair`` fixes it after a backup. The damage is real: bytes written into the
SQLite file where a table's pages are, or broken values written with SQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import sha
from PIL import Image

from picsearch.cli import main

PHOTOS = 40


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library of 40 small photos (tiny model, no detectors) whose photos also have
    words in the full-text index, as OCR would have put them there."""
    root = tmp_path_factory.mktemp("pristine")
    folder = root / "photos"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(PHOTOS):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo-{i:03d}-with-a-long-enough-name.png")
    db = root / "lib.db"
    argv = ["index", str(folder), "--db", str(db), "--model", "tiny", "--concepts", "off", "-q"]
    assert main(argv) == 0
    with closing(sqlite3.connect(db)) as conn:
        rows = [(i, f"a red sign saying number {i} on the wall " * 4) for i in range(1, PHOTOS + 1)]
        conn.executemany("INSERT INTO photo_text (rowid, text) VALUES (?, ?)", rows)
        conn.commit()
    return db


@pytest.fixture
def db(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine library, for this test to damage."""
    copy = tmp_path / "lib.db"
    shutil.copyfile(pristine, copy)
    return copy


def photos_of(db: Path) -> Path:
    with closing(sqlite3.connect(db)) as conn:
        (path,) = conn.execute("SELECT path FROM items LIMIT 1").fetchone()
    return Path(path).parent


# -- making damage ----------------------------------------------------------------------
def table_pages(db: Path, table: str) -> list[int]:
    """The pages of a table's b-tree under its root: its leaves (or the root itself)."""
    with closing(sqlite3.connect(db)) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)
        ).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    page = read_page(db, root, size)
    if page[0] != 0x05:  # not an interior table page: the root is the only page
        return [root]
    # Interior table page: a 12-byte header, then 2-byte cell pointers; each cell
    # starts with its child's 4-byte page number. The right-most child is at byte 8.
    cells = int.from_bytes(page[3:5], "big")
    children = []
    for n in range(cells):
        cell = int.from_bytes(page[12 + 2 * n : 14 + 2 * n], "big")
        children.append(int.from_bytes(page[cell : cell + 4], "big"))
    return [*children, int.from_bytes(page[8:12], "big")]


def read_page(db: Path, number: int, size: int) -> bytes:
    with db.open("rb") as handle:
        handle.seek((number - 1) * size)
        return handle.read(size)


def zero_page(db: Path, number: int) -> None:
    with closing(sqlite3.connect(db)) as conn:
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    with db.open("r+b") as handle:
        handle.seek((number - 1) * size)
        handle.write(bytes(size))


def execute(db: Path, *statements: str) -> None:
    with closing(sqlite3.connect(db)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def zero_a_middle_page_of_photos(db: Path) -> None:
    pages = table_pages(db, "items")
    assert len(pages) >= 3, "the photos table should span several pages"
    zero_page(db, pages[len(pages) // 2])


def zero_the_full_text_pages(db: Path) -> None:
    for page in table_pages(db, "photo_text_data"):
        zero_page(db, page)


def garble_the_full_text_index(db: Path) -> None:
    """The b-tree is sound; the FTS5 segments it holds are not (ids 1 and 10 are
    FTS5's averages and structure records; the segments' pages come after)."""
    with closing(sqlite3.connect(db)) as conn:
        blocks = conn.execute("SELECT id, length(block) FROM photo_text_data WHERE id > 10")
        garbled = [(bytes((7 * i + 3) % 256 for i in range(size)), id_) for id_, size in blocks]
        conn.executemany("UPDATE photo_text_data SET block = ? WHERE id = ?", garbled)
        conn.commit()


def break_dims(db: Path) -> None:
    execute(db, "UPDATE meta SET value = '{\"joint\": 8, ' WHERE key = 'dims'")


def shorten_vectors(db: Path) -> None:
    execute(
        db,
        "UPDATE items SET joint = x'0000' WHERE id = 5",
        "UPDATE items SET joint = x'' WHERE id = 7",
    )


def break_generation(db: Path) -> None:
    execute(db, "UPDATE meta SET value = 'twelve' WHERE key = 'generation'")


DAMAGES: dict[str, Callable[[Path], None]] = {
    "zeroed page of photos": zero_a_middle_page_of_photos,
    "zeroed full-text pages": zero_the_full_text_pages,
    "garbled full-text index": garble_the_full_text_index,
    "dims not JSON": break_dims,
    "short and empty vectors": shorten_vectors,
    "generation not a number": break_generation,
}

#: The kind of problem ``check`` reports first for each damage.
KINDS = {
    "zeroed page of photos": "pages",
    "zeroed full-text pages": "pages",
    "garbled full-text index": "fts",
    "dims not JSON": "meta",
    "short and empty vectors": "vectors",
    "generation not a number": "meta",
}


def assert_one_line_naming(err: str, db: Path) -> None:
    assert err.count("\n") == 1 and err.startswith("picsearch: error: "), err
    assert str(db) in err and f"picsearch check --db {db} --repair" in err, err
    assert "Traceback" not in err


# -- every command over a damaged library -----------------------------------------------
COMMANDS = {
    "search words": ["search", "red sign", "-k", "3"],
    "search filtered": ["search", "red", "--after", "2000-01-01"],
    "similar": ["similar", "3"],
    "info": ["info"],
    "index": ["index", "{photos}", "-q"],
    "dups": ["dups", "-q"],
    "export": ["export", "-o", "{out}"],
}

#: Damage a command does not read is no reason for it to fail: only the commands
#: that read the damaged part, or write, or report on the library, must say so.
FAILING = {
    "zeroed page of photos": set(COMMANDS),
    "zeroed full-text pages": {"search words", "info", "index"},
    "garbled full-text index": {"search words", "info", "index"},
    "dims not JSON": set(COMMANDS),
    # dups and similar compare the image-only vectors, which are intact.
    "short and empty vectors": set(COMMANDS) - {"dups", "similar"},
    "generation not a number": set(COMMANDS),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_commands_over_damage_fail_in_one_line_and_write_nothing(
    damage: str, db: Path, pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = photos_of(pristine)
    DAMAGES[damage](db)
    before = sha(db)
    for name in sorted(FAILING[damage]):
        argv = [a.format(photos=photos, out=tmp_path / "out.searcher") for a in COMMANDS[name]]
        code, out, err = run(capsys, *argv, "--db", str(db))
        assert code == 1 and out == "", (name, out, err)
        assert_one_line_naming(err, db)
    assert sha(db) == before  # nothing was written into the damaged file


@pytest.mark.parametrize("damage", DAMAGES)
def test_check_finds_and_repair_fixes(
    damage: str, db: Path, pristine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    DAMAGES[damage](db)
    damaged = db.read_bytes()
    code, out, err = run(capsys, "check", "--db", str(db))
    assert code == 1 and out.startswith(f"{KINDS[damage]}: "), out
    assert f"repair with: picsearch check --db {db} --repair" in err

    code, out, err = run(capsys, "check", "--db", str(db), "--repair")
    assert code == 0, (out, err)
    assert out.startswith("repaired: ") and "it checks clean now" in err
    (backup,) = db.parent.glob("lib.db.bak-*")
    assert same_pages(backup.read_bytes(), damaged)  # the file before the repair

    assert run(capsys, "check", "--db", str(db))[:2] == (0, "")
    code, out, err = run(capsys, "search", "red sign", "--db", str(db), "-k", "3", "--json")
    assert code == 0 and len(json.loads(out)) == 3, err
    code, _, err = run(capsys, "index", str(photos_of(pristine)), "--db", str(db), "-q")
    assert code == 0 and "skipped 0" in err
    assert count(db, "items") == PHOTOS  # what was lost came back by indexing again


def same_pages(copy: bytes, original: bytes) -> bool:
    """Whether an SQLite backup holds the original's pages, damage and all (the 100
    bytes of the file header hold counters that a backup sets anew)."""
    return len(copy) == len(original) and copy[100:] == original[100:]


def count(db: Path, table: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_repair_keeps_every_readable_photo_and_says_which_were_lost(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zero_a_middle_page_of_photos(db)
    code, out, _ = run(capsys, "check", "--db", str(db), "--repair")
    kept = count(db, "items")
    assert code == 0 and 0 < kept < PHOTOS
    lost = [line for line in out.splitlines() if "were unreadable and are gone" in line]
    assert len(lost) == 1 and "photos with ids" in lost[0]
    # Their words went with them; everyone else's stayed, and the index was rebuilt.
    assert count(db, "photo_text") == kept
    assert not Path(f"{db}.index").exists()


def test_repair_embeds_damaged_vectors_again_from_the_files(
    db: Path, pristine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shorten_vectors(db)
    code, out, _ = run(capsys, "check", "--db", str(db), "--repair")
    assert code == 0
    assert "embedded photo 5 " in out and "embedded photo 7 " in out
    assert vectors(db) == vectors(pristine)  # same ids, same vectors as before the damage


def vectors(db: Path) -> dict[int, bytes]:
    with closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT id, joint FROM items"))


def test_a_damaged_vector_whose_file_is_gone_is_removed(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(
        db,
        "UPDATE items SET joint = x'01', path_bytes = CAST('/nowhere/gone.png' AS BLOB)"
        " WHERE id = 3",
    )
    code, out, _ = run(capsys, "check", "--db", str(db), "--repair")
    assert code == 0 and "removed photo 3 (/nowhere/gone.png)" in out
    assert count(db, "items") == PHOTOS - 1


def test_repair_recomputes_dims_and_generation(
    db: Path, pristine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_dims(db)
    break_generation(db)
    assert run(capsys, "check", "--db", str(db), "--repair")[0] == 0
    assert meta(db)["dims"] == meta(pristine)["dims"]
    with closing(sqlite3.connect(db)) as conn:
        (top,) = conn.execute("SELECT max(version) FROM items").fetchone()
    assert int(meta(db)["generation"]) > top


def meta(db: Path) -> dict[str, str]:
    with closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT key, value FROM meta"))


def test_a_file_that_lost_its_first_page(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zero_page(db, 1)
    before = sha(db)
    code, out, err = run(capsys, "search", "red", "--db", str(db))
    assert code == 1 and "not a picsearch library, or it is damaged" in err
    assert_one_line_naming(err, db)
    code, out, _ = run(capsys, "check", "--db", str(db))
    assert code == 1 and out.startswith("pages: not a database")
    code, _, err = run(capsys, "check", "--db", str(db), "--repair")
    assert code == 1 and "too damaged to repair" in err and err.count("\n") == 1
    assert sha(db) == before


def test_a_sound_library_checks_clean_and_needs_no_repair(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "check", "--db", str(db))
    assert (code, out) == (0, "") and "no problems found" in err
    code, out, err = run(capsys, "check", "--db", str(db), "--repair")
    assert (code, out) == (0, "") and "nothing to repair" in err
    assert not list(db.parent.glob("lib.db.bak-*"))


def test_check_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shorten_vectors(db)
    code, out, _ = run(capsys, "check", "--db", str(db), "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert [(p["kind"], p["item_id"]) for p in report["problems"]] == [
        ("vectors", 5),
        ("vectors", 7),
    ]


def test_check_of_a_missing_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--db", str(tmp_path / "none.db"))
    assert code == 1 and "no library at" in err and err.count("\n") == 1


def test_an_older_library_gains_no_tables_while_damaged(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(db, "DROP TABLE moves")  # as a library of an earlier picsearch has it
    zero_a_middle_page_of_photos(db)
    before = sha(db)
    code, _, err = run(capsys, "search", "red", "--db", str(db))
    assert code == 1
    assert_one_line_naming(err, db)
    assert sha(db) == before


def test_another_programs_database_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "notes.db"
    execute(other, "CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('keep me')")
    before = sha(other)
    for argv in (["search", "red"], ["index", str(tmp_path), "--model", "tiny"]):
        code, _, err = run(capsys, *argv, "--db", str(other))
        assert code == 1 and "is not a picsearch library (no items table)" in err
    code, out, err = run(capsys, "check", "--db", str(other))
    assert code == 1 and out.startswith("not a library: ") and "--repair" not in err
    code, _, err = run(capsys, "check", "--db", str(other), "--repair")
    assert code == 1 and "nothing to repair" in err
    assert sha(other) == before and not list(tmp_path.glob("notes.db.bak-*"))
