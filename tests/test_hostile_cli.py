"""The command against hostile input: numbers SQLite cannot hold, a reader that stops
reading, read-only libraries, file names with control characters or bytes that are
not UTF-8, and mistyped options. One clear line, never a traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import picsearch_command, solid_photo

import picsearch
from picsearch.cli import main
from picsearch.errors import InvalidInput

HUGE = "99999999999999999999"  # more than a signed 64-bit integer holds


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def index(capsys: pytest.CaptureFixture[str], folder: Path, db: Path) -> None:
    argv = ["index", str(folder), "--db", str(db), "--model", "tiny", "--concepts", "off", "-q"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err


@pytest.fixture
def db(tmp_path: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "lib.db"
    index(capsys, colour_folder, path)
    return path


def assert_one_line(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and err.startswith("picsearch: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


# -- numbers SQLite cannot hold ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["search", "red", "--before", "9999-12-31T23:59:59"], "before="),
        (["search", "red", "--after", "0001-01-01"], "after="),
        (["search", "red", "--like", HUGE], "like="),
        (["search", "--like", HUGE], "like="),
        (["similar", HUGE], "id="),
    ],
)
def test_numbers_too_large_for_sqlite_are_one_line_errors(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    code, out, err = run(capsys, *argv, "--db", str(db))
    assert code == 1 and out == ""
    assert_one_line(err, named)


@pytest.mark.parametrize(
    "bounds",
    [
        {"before": 1e300},
        {"after": float("nan")},
        {"after": float("inf")},
        {"before": "9999-12-31"},
        {"like": 2**63},
        {"like": -1},
    ],
)
def test_the_library_checks_ids_and_dates_at_its_edge(db: Path, bounds: dict) -> None:
    with picsearch.open(db) as lib, pytest.raises(InvalidInput, match="=") as caught:
        lib.search("red", **bounds)
    assert next(iter(bounds)) in str(caught.value)


# -- k: never allocate more results than there are photos --------------------------------
def test_a_huge_k_returns_every_photo_fast_and_small(db: Path, colour_folder: Path) -> None:
    with picsearch.open(db) as lib:
        lib.search("red")  # loads the index: not part of what is measured
        tracemalloc.start()
        started = time.perf_counter()
        by_text = lib.search("red", k=10**9)
        by_both = lib.search("red", image=colour_folder / "green.png", k=10**9)
        like = lib.search(like=by_text[0].id, k=10**9)
        filtered = lib.search("red", k=10**9, folder=colour_folder / "sub")
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert (len(by_text), len(by_both), len(like), len(filtered)) == (4, 4, 3, 1)
    assert peak < 20e6 and seconds < 5


def test_a_huge_k_on_the_command_line(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "red", "-k", "1000000000", "--db", str(db))
    assert code == 0 and len(out.splitlines()) == 4
    code, out, _ = run(capsys, "similar", "1", "-k", "1000000000", "--db", str(db))
    assert code == 0 and len(out.splitlines()) == 3


# -- a reader that goes away -------------------------------------------------------------
def test_output_piped_into_head_ends_quietly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "many"
    first = solid_photo(folder / "seed.png", "red", size=(8, 8))
    for number in range(400):  # copies are recognised by content: indexing is quick
        shutil.copyfile(first, folder / f"a-photo-with-a-rather-long-name-{number:04d}.png")
    db = tmp_path / "many.db"
    index(capsys, folder, db)
    # Far more than a pipe holds, so the writer is still writing when head exits.
    command = (
        f'"{sys.executable}" -m picsearch.cli search red --db "{db}" -k 1000 --json | head -1;'
        ' echo "picsearch exited $((PIPESTATUS[0]))" >&2'
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.stdout == "[\n"
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "picsearch exited 1"


# -- read-only libraries -------------------------------------------------------------------
def run_as_user(*argv: str) -> subprocess.CompletedProcess[str]:
    """The command in a new process that file permissions apply to: as root, without
    the capabilities that let root ignore them."""
    return picsearch_command(*argv, as_plain_user=True)


@pytest.fixture
def read_only_library(
    tmp_path: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str], request
):
    """A library in a read-only folder, or a read-only library file (the parameter)."""
    folder = tmp_path / "shelf"
    folder.mkdir()
    db = folder / "lib.db"
    index(capsys, colour_folder, db)
    locked = folder if request.param == "folder" else db
    mode = locked.stat().st_mode
    locked.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield db
    locked.chmod(mode)


@pytest.mark.parametrize("read_only_library", ["folder", "file"], indirect=True)
def test_a_read_only_library_can_be_read_not_written(
    read_only_library: Path, colour_folder: Path
) -> None:
    db = read_only_library
    before = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.is_file()}

    info = run_as_user("info", "--db", str(db), "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["items"] == 4, info.stderr
    found = run_as_user("search", "red", "--db", str(db), "-k", "1")
    assert found.returncode == 0 and found.stdout.strip().endswith("red.jpg"), found.stderr
    similar = run_as_user("similar", "1", "--db", str(db), "-k", "1")
    assert similar.returncode == 0 and found.stderr == "", similar.stderr
    checked = run_as_user("check", "--db", str(db))
    assert checked.returncode == 0 and "no problems found" in checked.stderr

    refused = run_as_user("index", str(colour_folder), "--db", str(db))
    assert refused.returncode == 1, refused.stderr
    assert_one_line(refused.stderr, f"cannot write to {db}: read-only")

    # Reading left nothing behind (no WAL files owned by the reader) and changed nothing.
    after = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.is_file()}
    assert after == before


def test_a_new_library_in_a_read_only_folder(tmp_path: Path, colour_folder: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        done = run_as_user("index", str(colour_folder), "--db", str(folder / "lib.db"))
    finally:
        folder.chmod(0o755)
    assert done.returncode == 1
    assert_one_line(done.stderr, "cannot create", "read-only")


# -- file names ----------------------------------------------------------------------------
@pytest.fixture
def odd_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    folder = tmp_path / "odd"
    solid_photo(folder / "new\nline.png", "red")
    solid_photo(folder / "tab\tand\x1bescape.png", "green")
    solid_photo(Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png")), "blue")
    db = tmp_path / "odd.db"
    index(capsys, folder, db)
    return folder, db


def test_plain_output_escapes_control_characters_and_json_keeps_the_path(
    odd_names: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, db = odd_names
    code, out, err = run(capsys, "search", "red", "--db", str(db))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3, out  # one line per result, whatever the names
    assert lines[0].endswith(f"{folder}/new\\nline.png")
    assert any(line.endswith("tab\\tand\\x1bescape.png") for line in lines)
    assert any(line.endswith("caf\\xe9.png") for line in lines)
    code, out, _ = run(capsys, "search", "red", "--db", str(db), "--json")
    assert json.loads(out)[0]["path"] == str(folder / "new\nline.png")


def test_every_command_prints_paths_on_one_line(
    odd_names: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, db = odd_names
    code, out, _ = run(capsys, "similar", "1", "--db", str(db))
    assert code == 0 and len(out.splitlines()) == 2 and "\\n" in out + "\\t"
    code, out, _ = run(capsys, "info", str(folder / "new\nline.png"), "--db", str(db))
    assert code == 0 and re.search(r"/new\\nline\.png \(id \d+\)$", out.splitlines()[0])
    (folder / "not\nan image.jpg").write_text("hello")
    code, _, err = run(capsys, "index", str(folder), "--db", str(db), "-q")
    warnings = [line for line in err.splitlines() if "not\\nan image.jpg" in line]
    assert code == 0 and len(warnings) == 1 and warnings[0].startswith("picsearch: warning:")


def test_names_a_terminal_cannot_show_do_not_crash_the_output(
    odd_names: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, db = odd_names
    solid_photo(folder / "日本.png", "yellow")
    index(capsys, folder, db)
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [sys.executable, "-m", "picsearch.cli", "search", "yellow", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert done.stdout.splitlines()[0].endswith("\\u65e5\\u672c.png")


# -- dups --move-to with nothing to move -----------------------------------------------------
def test_dups_move_with_no_groups_says_nothing_to_move(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "moved"
    code, out, err = run(capsys, "dups", "--db", str(db), "--move-to", str(target), "--yes")
    assert code == 0 and out == ""
    assert "nothing to move" in err and "None" not in err and "--undo" not in err


# -- mistyped options --------------------------------------------------------------------------
def test_an_unknown_option_shows_the_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["search", "--bogus"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("usage: picsearch search ")
    assert err.splitlines()[-1] == "picsearch search: error: unrecognized arguments: --bogus"
    with pytest.raises(SystemExit):
        main(["--bogus", "search", "red"])
    assert capsys.readouterr().err.startswith("usage: picsearch [-h]")


def test_a_damaged_read_only_library_is_reported_not_repaired(db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = 'twelve' WHERE key = 'generation'")
    conn.close()
    before = db.read_bytes()
    db.parent.chmod(0o555)
    try:
        checked = run_as_user("check", "--db", str(db))
        repaired = run_as_user("check", "--db", str(db), "--repair")
    finally:
        db.parent.chmod(0o755)
    assert checked.returncode == 1 and checked.stdout.startswith("meta: 'generation'")
    assert repaired.returncode == 1
    assert_one_line(repaired.stderr, f"cannot write to {db}: read-only")
    assert db.read_bytes() == before and not list(tmp_path.glob("lib.db.bak-*"))
