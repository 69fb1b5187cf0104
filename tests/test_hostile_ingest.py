"""Indexing against a hostile file system: unreadable folders, FIFOs, huge and broken files,
odd names, transparency and Ctrl-C. Real files, real SQLite, the real command."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import picsearch_command, solid_photo
from PIL import Image, ImageDraw

import picsearch
from picsearch.catalog import Catalog
from picsearch.cli import main
from picsearch.concepts import ConceptBank
from picsearch.encoders import registry as encoders
from picsearch.encoders.tiny import COLOURS, TinyEncoder
from picsearch.images import DEFAULT_MAX_PIXELS, decode
from picsearch.ingest import index_paths

FAST = ["--model", "tiny", "--concepts", "off", "-q"]


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def locked() -> Iterator[list[Path]]:
    """Paths to chmod; their modes are restored afterwards so the folder can be removed."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        path.chmod(0o755)


def items(db: Path) -> list[tuple[int, bytes, str]]:
    with sqlite3.connect(db) as conn:
        return [
            (i, bytes(p), h)
            for i, p, h in conn.execute("SELECT id, path_bytes, hash FROM items ORDER BY id")
        ]


def count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def reasons(summary: picsearch.IndexSummary) -> dict[str, str]:
    return {os.path.basename(s.path): s.reason for s in summary.skipped}


def tiny_library(db: Path, folder: Path) -> picsearch.IndexSummary:
    with picsearch.open(db, model="tiny") as lib:
        return lib.index(folder, concepts="off")


@pytest.fixture
def album(tmp_path: Path) -> Path:
    """album/a.jpg, album/b.png, album/trip/c.jpg, album/trip/d.png."""
    folder = tmp_path / "album"
    solid_photo(folder / "a.jpg", "red")
    solid_photo(folder / "b.png", "green")
    solid_photo(folder / "trip" / "c.jpg", "blue")
    solid_photo(folder / "trip" / "d.png", "yellow")
    return folder


# -- an unreadable folder never empties the library ------------------------------------------


def test_unlistable_folder_keeps_its_photos(
    tmp_path: Path, album: Path, locked: list[Path]
) -> None:
    db = tmp_path / "lib.db"
    tiny_library(db, album)
    before = items(db)
    (album / "b.png").unlink()  # verifiably gone: its folder is listed fine
    (album / "trip").chmod(0o000)
    locked.append(album / "trip")
    done = picsearch_command("index", str(album), "--db", str(db), *FAST, as_plain_user=True)
    assert done.returncode == 0, done.stderr
    after = items(db)
    assert after == [row for row in before if not row[1].endswith(b"/b.png")]
    assert "removed 1" in done.stderr
    assert re.search(
        r"trip: folder cannot be listed \(permission denied\): its 2 photos", done.stderr
    )


def test_unreadable_root_is_refused_and_changes_nothing(
    tmp_path: Path, album: Path, locked: list[Path]
) -> None:
    db = tmp_path / "lib.db"
    tiny_library(db, album)
    before = items(db)
    album.chmod(0o000)
    locked.append(album)
    done = picsearch_command("index", str(album), "--db", str(db), *FAST, as_plain_user=True)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{album} cannot be read (permission denied)" in done.stderr
    assert items(db) == before


def test_files_that_cannot_be_looked_at_keep_their_photos(
    tmp_path: Path, album: Path, locked: list[Path]
) -> None:
    """A folder that can be listed but not entered: its files cannot be stat'ed."""
    db = tmp_path / "lib.db"
    tiny_library(db, album)
    before = items(db)
    (album / "trip").chmod(0o444)
    locked.append(album / "trip")
    done = picsearch_command("index", str(album), "--db", str(db), *FAST, as_plain_user=True)
    assert done.returncode == 0, done.stderr
    assert items(db) == before
    assert re.search(
        r"c\.jpg: cannot be read \(permission denied\): its photo is kept", done.stderr
    )


def test_missing_root_is_refused_and_changes_nothing(tmp_path: Path, album: Path) -> None:
    db = tmp_path / "lib.db"
    tiny_library(db, album)
    before = items(db)
    shutil.rmtree(album)
    with picsearch.open(db) as lib, pytest.raises(picsearch.InvalidInput, match="does not exist"):
        lib.index(album)
    assert items(db) == before


def test_broken_link_to_a_folder_keeps_its_photos(tmp_path: Path, album: Path) -> None:
    """A folder linked from a disk that is not mounted now looks like a broken symlink."""
    disk = tmp_path / "disk"
    solid_photo(disk / "e.jpg", "white")
    solid_photo(disk / "f.jpg", "black")
    (album / "disk").symlink_to(disk)
    db = tmp_path / "lib.db"
    assert tiny_library(db, album).added == 6
    disk.rename(tmp_path / "unmounted")
    summary = tiny_library(db, album)
    assert (summary.removed, len(items(db))) == (0, 6)
    assert reasons(summary)["disk"].endswith("its 2 photos are kept")


def test_photos_still_there_are_never_removed(tmp_path: Path, album: Path) -> None:
    """A photo indexed as a root of its own, in a hidden folder or under a name without an
    image extension, is not walked when its parent folder is indexed: it stays."""
    hidden = solid_photo(album / ".private" / "g.jpg", "purple")
    unnamed = solid_photo(album / "h.picture", "orange", format="PNG")
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        assert lib.index([hidden.parent, unnamed], concepts="off").added == 2
        summary = lib.index(album, concepts="off")
        assert (summary.added, summary.removed, len(lib)) == (4, 0, 6)
        hidden.unlink()  # and once it is gone, it goes
        assert lib.index(album, concepts="off").removed == 1


# -- FIFOs, devices, empty paths -------------------------------------------------------------


def test_fifo_and_device_are_skipped_without_opening(tmp_path: Path, album: Path) -> None:
    os.mkfifo(album / "pipe.jpg")
    (album / "null.png").symlink_to(os.devnull)
    fifo_root = tmp_path / "root-pipe"
    os.mkfifo(fifo_root)
    # A process of its own: a regression would block on the FIFO, not hang the tests.
    done = picsearch_command(
        "index", str(album), str(fifo_root), "--db", str(tmp_path / "lib.db"), *FAST, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pipe.jpg: not a regular file: a FIFO" in done.stderr
    assert "null.png: not a regular file: a character device" in done.stderr
    assert "root-pipe: not a regular file: a FIFO" in done.stderr
    assert count(tmp_path / "lib.db") == 4


def test_search_by_a_fifo_is_refused(tmp_path: Path, album: Path) -> None:
    db = tmp_path / "lib.db"
    tiny_library(db, album)
    os.mkfifo(tmp_path / "query.jpg")
    done = picsearch_command("search", "--image", str(tmp_path / "query.jpg"), "--db", str(db))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "query.jpg: not a regular file: a FIFO" in done.stderr


def test_empty_path_is_refused(
    tmp_path: Path, album: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(album)
    assert main(["index", "", "--db", str(tmp_path / "lib.db"), *FAST]) == 1
    assert "an empty path" in capsys.readouterr().err
    assert not (tmp_path / "lib.db").exists()


def test_missing_folder_leaves_no_library_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new" / "lib.db"
    assert main(["index", str(tmp_path / "nonexistent"), "--db", str(db), *FAST]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not db.exists() and not db.parent.exists()


# -- huge files are never read whole ---------------------------------------------------------

MEASURE = r"""
import re, sys, time, picsearch
started = time.perf_counter()
summary = picsearch.open(sys.argv[1], model="tiny").index(sys.argv[2], concepts="off")
print(time.perf_counter() - started)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
print(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
for skip in summary.skipped:
    print(skip.path, skip.reason, sep=": ")
"""


def test_huge_files_are_skipped_without_reading_them(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    solid_photo(folder / "ok.jpg", "red")
    zeros, fake = folder / "zeros.jpg", folder / "fake.jpg"
    zeros.touch()
    os.truncate(zeros, 2 * 2**30)  # sparse: costs no disk
    fake.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 60)
    os.truncate(fake, 2 * 2**30)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path / "lib.db"), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seconds, peak_kib, *skips = done.stdout.splitlines()
    assert float(seconds) < 10
    assert int(peak_kib) < 500 * 1024  # Linux reports kibibytes
    assert f"{zeros}: not an image (unknown or unsupported format)" in skips
    assert any(
        s.startswith(f"{fake}: too large for an image") and "--max-pixels" in s for s in skips
    )
    assert count(tmp_path / "lib.db") == 1


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of valid PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_huge_dimensions_are_skipped_by_pixel_count(tmp_path: Path, album: Path) -> None:
    (album / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    started = time.perf_counter()
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        summary = lib.index(album, concepts="off")
        with pytest.raises(picsearch.InvalidInput, match="too large: 100000x100000"):
            lib.search(image=album / "bomb.png")
    assert time.perf_counter() - started < 10
    assert reasons(summary)["bomb.png"].startswith("too large: 100000x100000 = 10,000,000,000")
    assert summary.added == 4


def test_damaged_files_are_skipped_with_reasons(tmp_path: Path, album: Path) -> None:
    png = (album / "b.png").read_bytes()
    broken = bytearray(png)
    broken[-20:-12] = b"\x00" * 8  # the last IDAT's data and CRC
    damaged = {
        "bad-crc.png": bytes(broken),
        "header-only.png": png[:33],
        "header-only.gif": b"GIF89a\x10\x00\x10\x00\x80\x00\x00",
        "riff-only.webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
        "header-only.bmp": b"BM" + b"\x00" * 12,
        "header-only.tif": b"II*\x00\x08\x00\x00\x00",
        "soi-and-noise.jpg": b"\xff\xd8\xff" + os.urandom(500),
        "html.jpg": b"<!doctype html><title>404</title>",
    }
    for name, data in damaged.items():
        (album / name).write_bytes(data)
    summary = tiny_library(tmp_path / "lib.db", album)
    why = reasons(summary)
    assert set(why) == set(damaged)
    assert all(why.values())
    assert why["html.jpg"] == "not an image (unknown or unsupported format)"
    assert summary.added == 4


# -- odd names -------------------------------------------------------------------------------


def test_undecodable_and_newline_names_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    base = os.fsencode(folder)
    odd = {
        base + b"/caf\xe9.jpg": "red",
        base + b"/line\nbreak.png": "blue",
        base + b"/\xff\xfe-dir\n/inner.jpg": "green",
    }
    for path, colour in odd.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), COLOURS[colour]).save(buffer, "PNG")
        with open(path, "wb") as handle:
            handle.write(buffer.getvalue())
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        assert lib.index(folder, concepts="off").added == 3
        for path, colour in odd.items():
            hit = lib.search(colour, k=1)[0]
            assert os.fsencode(hit.path) == path
            assert os.fsencode(lib.get(hit.id).path) == path
            assert Path(hit.path).is_file()  # usable as it comes back
        assert lib.index(folder, concepts="off").unchanged == 3  # and recognised next time


# -- transparency ----------------------------------------------------------------------------


def drawn_on_transparency(path: Path, shape: str, colour: tuple[int, int, int]) -> Path:
    """A shape in one colour whose transparent pixels have that colour too: the picture is
    only in the alpha channel, as in exported logos."""
    image = Image.new("RGBA", (64, 64), (*colour, 0))
    draw = ImageDraw.Draw(image)
    if shape == "disc":
        draw.ellipse([8, 8, 56, 56], fill=(*colour, 255))
    else:
        draw.rectangle([4, 26, 60, 38], fill=(*colour, 255))
    image.save(path)
    return path


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (250, 200, 210)])
def test_different_transparent_pictures_stay_different(
    tmp_path: Path, colour: tuple[int, int, int]
) -> None:
    folder = tmp_path / "logos"
    folder.mkdir()
    drawn_on_transparency(folder / "disc.png", "disc", colour)
    drawn_on_transparency(folder / "bar.png", "bar", colour)
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        assert lib.index(folder, concepts="off").added == 2
        _, vectors = lib.vectors("visual")
    assert float(vectors[0] @ vectors[1]) < 0.99


def test_opaque_pictures_are_unchanged() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    rgb = Image.fromarray(pixels)
    opaque_rgba = Image.fromarray(np.dstack([pixels, np.full((48, 64), 255, np.uint8)]))
    palette = rgb.quantize(64)
    for image, expected in [(rgb, rgb), (opaque_rgba, rgb), (palette, palette.convert("RGB"))]:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        decoded, _, _ = decode(buffer.getvalue(), short_side=64, max_pixels=DEFAULT_MAX_PIXELS)
        assert np.array_equal(np.asarray(decoded), np.asarray(expected))


# -- models load only when there is work -----------------------------------------------------


class WarmUpCounting(TinyEncoder):
    def __init__(self) -> None:
        self.warm_ups = 0

    def prepare_images(self) -> None:
        self.warm_ups += 1


def test_unchanged_folder_loads_no_model(tmp_path: Path, album: Path) -> None:
    catalog = Catalog(tmp_path / "lib.db", create=True)
    first = ConceptBank("fast")
    index_paths(catalog, WarmUpCounting(), [album], max_pixels=DEFAULT_MAX_PIXELS, concepts=first)
    assert first.loaded

    encoder, bank = WarmUpCounting(), ConceptBank("fast")
    summary = index_paths(catalog, encoder, [album], max_pixels=DEFAULT_MAX_PIXELS, concepts=bank)
    assert summary.unchanged == 4
    assert (bank.loaded, encoder.warm_ups) == (False, 0)

    solid_photo(album / "new.jpg", "purple")
    summary = index_paths(catalog, encoder, [album], max_pixels=DEFAULT_MAX_PIXELS, concepts=bank)
    assert summary.added == 1
    assert (bank.loaded, encoder.warm_ups) == (True, 1)
    catalog.close()


# -- Ctrl-C ----------------------------------------------------------------------------------

SLOW_READS = """
import sys, time
from picsearch import encoders
from picsearch.encoders.tiny import COLOURS, TinyEncoder
from picsearch.cli import main

class SlowReads(TinyEncoder):
    def preprocess(self, image):  # runs in the read threads: a slow decode
        time.sleep(0.6)
        return super().preprocess(image)

encoders.register_encoder("slowreads", lambda _: SlowReads())
sys.exit(main(["index", sys.argv[1], "--db", sys.argv[2], "--model", "slowreads",
               "--concepts", "off", "--batch-size", "4", "--workers", "2", "-q"]))
"""


class EmbedCounting(TinyEncoder):
    def __init__(self) -> None:
        self.embedded = 0

    def embed_arrays(self, batch: np.ndarray):
        self.embedded += len(batch)
        return super().embed_arrays(batch)


def test_ctrl_c_stops_at_once_and_keeps_what_was_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(300):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    db = tmp_path / "lib.db"
    script = tmp_path / "slow_reads.py"
    script.write_text(SLOW_READS)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(folder), str(db)],
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job inherits SIGINT ignored, as a terminal's would not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while count(db) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - interrupted

    assert proc.returncode == 130, stderr
    assert stopped_in < 2.0  # one read in flight (0.6 s), not the queue behind it
    said = re.fullmatch(
        r"picsearch: interrupted: kept (\d+) photos indexed so far; "
        r"run the same command to continue\n",
        stderr,
    )
    assert said, stderr
    kept = count(db)
    assert 4 <= int(said.group(1)) <= kept < 300

    encoder = EmbedCounting()
    encoders.register_encoder("slowreads", lambda _: encoder)
    monkeypatch.delitem(encoders._CACHE, "slowreads", raising=False)
    with picsearch.open(db) as lib:
        assert len(lib.search("red", k=3)) == 3  # the interrupted library searches
        summary = lib.index(folder, concepts="off")
        assert (summary.unchanged, summary.added, encoder.embedded) == (
            kept,
            300 - kept,
            300 - kept,
        )
        assert len(lib) == 300
