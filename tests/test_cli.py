"""The picsearch command: results on stdout, everything else on stderr, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from picsearch.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = str(tmp_path / "lib.db")
    code, out, err = run(capsys, "index", str(colour_folder), "--db", path, "--model", "tiny")
    assert code == 0 and out == ""
    assert "added 4" in err
    return path


def test_search_prints_ranked_paths(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "search", "a red thing", "--db", db, "-k", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].split()[0] == "1" and lines[0].endswith("red.jpg")
    assert err == ""


def test_search_json(db: str, colour_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = str(colour_folder / "sub" / "blue.jpg")
    code, out, _ = run(capsys, "search", "--image", image, "--db", db, "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 4
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert hits[0]["path"] == image and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[3]["score"]


def test_combined_query(db: str, colour_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "search",
        "yellow",
        "--image",
        str(colour_folder / "red.jpg"),
        "--db",
        db,
        "--json",
        "-k",
        "2",
    )
    assert code == 0
    assert {Path(h["path"]).name for h in json.loads(out)} == {"yellow.webp", "red.jpg"}


def test_info(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", "--db", db, "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["items"], info["model"], info["dims"]["joint"]) == (4, "tiny", 8)
    code, out, _ = run(capsys, "info", "--db", db)
    assert "items:    4" in out and "tiny-colour-v1" in out and "index joint: exact" in out


def test_default_db_from_environment(
    tmp_path: Path,
    colour_folder: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PICSEARCH_DB", str(tmp_path / "env.db"))
    assert run(capsys, "index", str(colour_folder), "--model", "tiny")[0] == 0
    code, out, _ = run(capsys, "search", "green", "-k", "1")
    assert code == 0 and out.strip().endswith("green.png")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", ""], "the text query is empty"),
        (["search"], "nothing to search for"),
        (["search", "red", "-k", "0"], "k must be"),
        (["search", "--image", "{folder}/missing.jpg"], "missing"),
        (["search", "--image", "{folder}/notes.jpg"], "not an image"),
        (["index", "{folder}", "--model", "default"], "was built with model 'tiny'"),
        (["index", "{folder}/nope"], "does not exist"),
    ],
)
def test_errors_are_one_clear_line(
    db: str,
    colour_folder: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    (colour_folder / "notes.jpg").write_text("hello")
    argv = [a.format(folder=colour_folder) for a in argv]
    code, out, err = run(capsys, *argv, "--db", db)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("picsearch: error:") and message in err
    assert "Traceback" not in err


def test_missing_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.db")
    code, _, err = run(capsys, "search", "red", "--db", missing)
    assert code == 1 and "no library at" in err and "picsearch index" in err
    assert not Path(missing).exists()


def test_skipped_files_warn_on_stderr(
    tmp_path: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (colour_folder / "empty.jpg").write_bytes(b"")
    code, out, err = run(
        capsys, "index", str(colour_folder), "--db", str(tmp_path / "l.db"), "--model", "tiny"
    )
    assert code == 0 and out == ""
    assert "empty.jpg: empty file" in err and "skipped 1" in err


def test_console_script_entry_point(db: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "picsearch.cli", "search", "blue", "--db", db, "-k", "1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("blue.jpg")


def test_folder_filter(db: str, colour_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = str(colour_folder / "sub")
    code, out, _ = run(capsys, "search", "red", "--db", db, "--folder", sub, "--json")
    assert code == 0 and [Path(h["path"]).name for h in json.loads(out)] == ["blue.jpg"]


def test_paths_are_shown_one_way() -> None:
    """JSON, HTML and the server show a path through path_text; the command's lines
    through printable, which also keeps a result on one line."""
    from picsearch.display import path_text, printable

    name = os.fsdecode(b"caf\xe9\n.png")  # not UTF-8, and a newline in it
    assert path_text(name) == "caf\\xe9\n.png"
    assert printable(name) == "caf\\xe9\\n.png"
    assert path_text("\ud800") == printable("\ud800") == "\\ud800"  # no file name gave it
