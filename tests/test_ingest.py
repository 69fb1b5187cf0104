"""Incremental indexing and every kind of bad file, on real files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import solid_photo
from PIL import Image

import picsearch
from picsearch.encoders import registry as encoders
from picsearch.encoders.tiny import TinyEncoder


class CountingEncoder(TinyEncoder):
    """The tiny encoder, counting how many images it embeds."""

    def __init__(self) -> None:
        self.embedded = 0

    def embed_arrays(self, batch: np.ndarray):
        self.embedded += len(batch)
        return super().embed_arrays(batch)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    encoder = CountingEncoder()
    encoders.register_encoder("counting", lambda _: encoder)
    monkeypatch.delitem(encoders._CACHE, "counting", raising=False)
    return encoder


def reasons(summary: picsearch.IndexSummary) -> dict[str, str]:
    return {os.path.basename(s.path): s.reason for s in summary.skipped}


def test_second_run_embeds_nothing(tmp_path: Path, colour_folder: Path, counting) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="counting")
    first = lib.index(colour_folder)
    assert (first.added, counting.embedded) == (4, 4)
    second = lib.index(colour_folder)
    assert (second.added, second.updated, second.unchanged, counting.embedded) == (0, 0, 4, 4)


def test_changed_file_is_re_embedded(tmp_path: Path, colour_folder: Path, counting) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="counting")
    lib.index(colour_folder)
    solid_photo(colour_folder / "red.jpg", "purple", size=(80, 60))
    summary = lib.index(colour_folder)
    assert (summary.updated, counting.embedded) == (1, 5)
    assert Path(lib.search("purple", k=1)[0].path).name == "red.jpg"


def test_touched_but_identical_file_is_not_re_embedded(
    tmp_path: Path, colour_folder: Path, counting
) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="counting")
    lib.index(colour_folder)
    os.utime(colour_folder / "red.jpg", ns=(10**18, 10**18))
    summary = lib.index(colour_folder)
    assert (summary.updated, summary.unchanged, counting.embedded) == (0, 4, 4)


def test_deleted_file_disappears(tmp_path: Path, colour_folder: Path, counting) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="counting")
    lib.index(colour_folder)
    (colour_folder / "red.jpg").unlink()
    summary = lib.index(colour_folder)
    assert summary.removed == 1
    assert "red.jpg" not in [Path(h.path).name for h in lib.search("red", k=10)]


def test_renamed_and_copied_files_are_recognised(
    tmp_path: Path, colour_folder: Path, counting
) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="counting")
    lib.index(colour_folder)
    (colour_folder / "red.jpg").rename(colour_folder / "crimson.jpg")
    shutil.copy(colour_folder / "green.png", colour_folder / "green copy.png")
    summary = lib.index(colour_folder)
    assert (summary.added, summary.reused, summary.removed) == (2, 2, 1)
    assert counting.embedded == 4
    top = [Path(h.path).name for h in lib.search("red", k=1)]
    assert top == ["crimson.jpg"]


def test_bad_files_are_skipped_with_reasons(tmp_path: Path, colour_folder: Path) -> None:
    (colour_folder / "empty.jpg").write_bytes(b"")
    (colour_folder / "notes.png").write_text("this is text, not a picture")
    good = (colour_folder / "red.jpg").read_bytes()
    (colour_folder / "cut.jpg").write_bytes(good[: len(good) // 2])
    png = (colour_folder / "green.png").read_bytes()
    (colour_folder / "cut.png").write_bytes(png[: len(png) // 2])
    corrupt = bytearray(good)
    corrupt[200:400] = b"\x00" * 200
    (colour_folder / "scrambled.jpg").write_bytes(bytes(corrupt[:300]) + b"\xff\xd9")
    (colour_folder / "dir.jpg").mkdir()
    summary = picsearch.open(tmp_path / "lib.db", model="tiny").index(colour_folder)
    why = reasons(summary)
    assert "empty" in why["empty.jpg"]
    assert "not an image" in why["notes.png"]
    assert "truncated" in why["cut.jpg"] and "truncated" in why["cut.png"]
    assert "scrambled.jpg" in why
    assert summary.added == 4


def test_pixel_limit_skips_decompression_bombs(tmp_path: Path, colour_folder: Path) -> None:
    Image.new("RGB", (3000, 3000), (10, 10, 10)).save(colour_folder / "huge.png")
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    summary = lib.index(colour_folder, max_pixels=1_000_000)
    assert "too large" in reasons(summary)["huge.png"]
    assert "--max-pixels" in reasons(summary)["huge.png"]
    assert lib.index(colour_folder).added == 1  # the default limit lets it in


def test_links_loops_and_odd_names(tmp_path: Path, colour_folder: Path) -> None:
    (colour_folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (colour_folder / "sub" / "loop").symlink_to(colour_folder)
    (colour_folder / "self.jpg").symlink_to(colour_folder / "self.jpg")
    solid_photo(colour_folder / "café 📷 ünïcode.jpg", "purple")
    raw = os.fsencode(colour_folder) + b"/latin1-\xe9\xff.jpg"
    shutil.copy(colour_folder / "red.jpg", raw)
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    summary = lib.index(colour_folder)
    why = reasons(summary)
    assert "broken symlink" in why["dangling.jpg"]
    assert "self.jpg" in why  # a link to itself
    assert any("loop" in reason for reason in why.values())
    assert summary.added == 6
    found = [h.path for h in lib.search("purple", k=1)]
    assert found[0].endswith("café 📷 ünïcode.jpg")
    paths = [os.fsencode(h.path) for h in lib.search("red", k=10)]
    assert raw in paths
    latin = next(h for h in lib.search("red", k=10) if os.fsencode(h.path) == raw)
    assert "\\xe9\\xff" in latin.to_dict()["path"]


# Root reads every file whatever its mode: drop the capabilities that allow it.
_AS_PLAIN_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)


@pytest.mark.skipif(
    os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv"
)
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    solid_photo(folder / "ok.jpg", "red")
    solid_photo(folder / "secret.jpg", "blue").chmod(0o000)
    code = (
        "import picsearch, sys; s = picsearch.open(sys.argv[1], model='tiny')"
        ".index(sys.argv[2]); print(s.added, [k.reason for k in s.skipped])"
    )
    out = subprocess.run(
        [*_AS_PLAIN_USER, sys.executable, "-c", code, str(tmp_path / "lib.db"), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("1 ") and "permission denied" in out


SLOW_INDEX = """
import sys, time
from picsearch import encoders
from picsearch.encoders.tiny import TinyEncoder
from picsearch.cli import main

class Slow(TinyEncoder):
    def embed_arrays(self, batch):
        time.sleep(0.15)
        return super().embed_arrays(batch)

encoders.register_encoder("slow", lambda _: Slow())
sys.exit(main(["index", sys.argv[1], "--db", sys.argv[2], "--model", "slow",
               "--batch-size", "4", "-q"]))
"""


def test_killed_run_keeps_committed_work_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    colours = ["red", "green", "blue", "yellow", "white", "black", "purple", "orange"]
    for i in range(48):
        solid_photo(folder / f"{i:03}.png", colours[i % 8], size=(40 + i, 30))
    db = tmp_path / "lib.db"
    script = tmp_path / "slow_index.py"
    script.write_text(SLOW_INDEX)
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(db)])
    committed = 0
    deadline = time.monotonic() + 60
    while committed < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        committed = _count(db)
    proc.kill()
    proc.wait()
    assert 0 < committed < 48, "the run should have been killed midway"
    before = _count(db)
    lib = picsearch.open(db)
    encoder = CountingEncoder()
    encoders.register_encoder("slow", lambda _: encoder)
    encoders._CACHE.pop("slow", None)
    summary = lib.index(folder)
    assert summary.unchanged == before
    assert summary.added == 48 - before == encoder.embedded
    assert len(lib) == 48


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
