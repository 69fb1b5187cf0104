"""Near-duplicates against what goes wrong in real collections: pictures whose vectors
carry no content (blank pages, transparent images) are never grouped, and moving
copies away (or back) keeps the library naming where each file is, even when a
move fails half way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import picsearch_command, plain_user_prefix, sha, striped
from PIL import Image, ImageDraw

import picsearch
from picsearch.cli import main
from picsearch.dups import (
    MIN_CONTENT_SHARE,
    content_share,
    find_duplicates,
    move_duplicates,
    undo_move,
)
from picsearch.errors import InvalidInput

# --------------------------------------------------------------------------- helpers


def index(db: Path, folder: Path, **options: object) -> picsearch.IndexSummary:
    with picsearch.open(db, model="tiny") as library:
        return library.index([folder], concepts="off", **options)


def groups_by_name(db: Path, threshold: float = 0.95) -> list[list[str]]:
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=threshold)
    return sorted(sorted(Path(m.path).name for m in g.members) for g in groups)


def paths_by_id(db: Path) -> dict[int, str]:
    with picsearch.open(db) as library:
        ids, _ = library.vectors("joint")
        return {int(i): library.get(int(i)).path for i in ids}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dup_folder(tmp_path: Path) -> Path:
    """Two originals with a near-duplicate each (one in a subfolder), and a third photo."""
    folder = tmp_path / "photos"
    striped(folder / "a.jpg", 1)
    (folder / "sub").mkdir()
    Image.open(folder / "a.jpg").resize((96, 72)).save(folder / "sub" / "a_small.jpg", quality=40)
    striped(folder / "b.jpg", 2, size=(200, 150))
    Image.open(folder / "b.jpg").resize((150, 112)).save(folder / "b_small.jpg", quality=50)
    striped(folder / "c.jpg", 3)
    return folder


@pytest.fixture
def db(tmp_path: Path, dup_folder: Path) -> Path:
    path = tmp_path / "lib.db"
    note = {str(dup_folder / "sub" / "a_small.jpg"): {"album": "summer 2019"}}
    index(path, dup_folder, metadata=note)
    return path


# --------------------------------------------------------------------------- blank pictures


def shape_on_transparency(path: Path, shape: str, box: tuple[int, int, int, int]) -> Path:
    """A white shape on a fully transparent background (an icon for a dark theme)."""
    image = Image.new("RGBA", (160, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    getattr(draw, shape)(box, fill=(255, 255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def test_distinct_shapes_on_transparency_are_not_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "icons"
    # Different shapes in different places: whatever they are flattened onto, they differ.
    circle = shape_on_transparency(folder / "circle.png", "ellipse", (10, 5, 70, 55))
    shape_on_transparency(folder / "square.png", "rectangle", (90, 60, 150, 115))
    shape_on_transparency(folder / "bar.png", "rectangle", (0, 50, 160, 70))
    shutil.copyfile(circle, folder / "circle copy.png")  # the same bytes: a true copy
    index(tmp_path / "icons.db", folder)
    assert groups_by_name(tmp_path / "icons.db") == [["circle copy.png", "circle.png"]]


def near_blank_page(path: Path, mark: tuple[int, int], shade: int = 250) -> Path:
    """A white page with one small pen mark, saved as a JPEG."""
    image = Image.new("RGB", (160, 120), (shade, shade, shade))
    x, y = mark
    ImageDraw.Draw(image).ellipse((x, y, x + 5, y + 5), fill=(40, 40, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90)
    return path


def test_distinct_near_blank_pages_are_not_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    first = near_blank_page(folder / "page1.jpg", (20, 20))
    near_blank_page(folder / "page2.jpg", (120, 90))
    near_blank_page(folder / "page3.jpg", (70, 50), shade=240)
    Image.new("RGB", (160, 120), "white").save(folder / "blank.png")
    shutil.copyfile(first, folder / "page1 again.jpg")
    striped(folder / "photo.jpg", 7)  # real photos with real copies still group
    Image.open(folder / "photo.jpg").save(folder / "photo_copy.jpg", quality=60)
    index(tmp_path / "scans.db", folder)
    with picsearch.open(tmp_path / "scans.db") as library:
        ids, vectors = library.vectors("visual")
        names = [Path(library.get(int(i)).path).name for i in ids]
    pages = [names.index(name) for name in ("page1.jpg", "page2.jpg", "page3.jpg", "blank.png")]
    assert (vectors[pages] @ vectors[pages].T).min() > 0.99  # the vectors alone: all copies
    assert groups_by_name(tmp_path / "scans.db") == [
        ["page1 again.jpg", "page1.jpg"],
        ["photo.jpg", "photo_copy.jpg"],
    ]


def test_content_share_tells_blank_pictures_from_photos(tmp_path: Path) -> None:
    page = near_blank_page(tmp_path / "page.jpg", (20, 20))
    photo = striped(tmp_path / "photo.jpg", 3)
    assert content_share(page) < MIN_CONTENT_SHARE <= content_share(photo)
    with pytest.raises(InvalidInput, match="cannot read"):
        content_share(tmp_path / "missing.jpg")


# --------------------------------------------------------------------------- moves


def test_move_and_undo_keep_the_library_current(db: Path, tmp_path: Path) -> None:
    before = paths_by_id(db)
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
        done = move_duplicates(groups, tmp_path / "dupes", dry_run=False)
        assert len(done.moves) == 2 and not done.skipped
        for move in done.moves:  # an open library sees the new paths at once
            assert Path(move.destination).is_file() and not Path(move.source).exists()
            assert library.get(move.id).path == move.destination
            hit = library.search(image=move.destination, k=1)[0]
            assert (hit.id, hit.path) == (move.id, move.destination)
        moved_a = next(m for m in done.moves if m.source.endswith("a_small.jpg"))
        assert library.get(moved_a.id).metadata["album"] == "summer 2019"
    after = paths_by_id(db)
    assert after.keys() == before.keys()
    assert all(os.path.isfile(path) for path in after.values())
    # The move folder is outside the indexed one: indexing it again keeps the moved photos.
    summary = index(db, tmp_path / "photos")
    assert (summary.added, summary.removed) == (0, 0) and paths_by_id(db) == after

    report = undo_move(done.log_path)
    assert len(report.restored) == 2 and not report.refused
    assert paths_by_id(db) == before
    with picsearch.open(db) as library:
        assert library.get(moved_a.id).metadata["album"] == "summer 2019"
    summary = index(db, tmp_path / "photos")
    assert (summary.added, summary.removed, summary.unchanged) == (0, 0, 5)


def test_a_move_inside_the_indexed_folder_is_the_same_photo_on_the_next_index(
    db: Path, dup_folder: Path
) -> None:
    before = paths_by_id(db)
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    done = move_duplicates(groups, dup_folder / "dupes", dry_run=False)
    summary = index(db, dup_folder)
    assert (summary.added, summary.removed, summary.unchanged) == (0, 0, 5)
    after = paths_by_id(db)
    assert after.keys() == before.keys()
    assert {after[m.id] for m in done.moves} == {m.destination for m in done.moves}


def test_the_commands_move_and_undo_what_search_shows(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--db", str(db)]
    code, _, err = run(
        capsys, "dups", *base, "--threshold", "0.95", "--move-to", str(tmp_path / "d"), "--yes"
    )
    assert code == 0
    log_path = err.split("picsearch dups --undo ")[1].split()[0]
    moved = [json.loads(line) for line in Path(log_path).read_text().splitlines()[1:]]
    for move in moved:
        code, out, _ = run(capsys, "search", "--image", move["destination"], *base, "--json")
        assert json.loads(out)[0]["path"] == move["destination"]
    code, _, err = run(capsys, "dups", "--undo", log_path)
    assert code == 0 and "moved back 2 files" in err
    for move in moved:
        code, out, _ = run(capsys, "search", "--image", move["source"], *base, "--json")
        assert json.loads(out)[0]["path"] == move["source"]


def test_the_web_page_serves_a_moved_photo(db: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from picsearch.server import create_app

    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    done = move_duplicates(groups, tmp_path / "d", dry_run=False)
    app = create_app(db, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for move in done.moves:
            item = client.get(f"/api/items/{move.id}").json()
            assert item["path"] == move.destination
            thumbnail = client.get(f"/api/items/{move.id}/thumbnail")
            assert thumbnail.status_code == 200


# A move that fails half way, with a real permission error: root ignores file modes, so the
# mover runs without the capabilities that let it.
_MOVER = """
import json, sys
import picsearch
from picsearch.dups import find_duplicates
from picsearch.dups import move_duplicates
with picsearch.open(sys.argv[1]) as library:
    groups = find_duplicates(library, threshold=0.95)
report = move_duplicates(groups, sys.argv[2], dry_run=False)
print(json.dumps(report.to_dict()))
"""


def run_unprivileged(*argv: str) -> dict[str, object]:
    command = [*plain_user_prefix(), sys.executable, "-c", _MOVER, *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("read_only", ["the source folder", "the destination folder"])
def test_a_move_that_fails_half_way_leaves_library_and_files_agreeing(
    db: Path, dup_folder: Path, tmp_path: Path, read_only: str
) -> None:
    hashes = {sha(p): p.name for p in dup_folder.rglob("*.jpg")}
    before = paths_by_id(db)
    target = tmp_path / "dupes"
    # a_small.jpg cannot leave photos/sub, or cannot enter dupes/sub; b_small.jpg moves.
    locked = dup_folder / "sub" if read_only == "the source folder" else target / "sub"
    locked.mkdir(parents=True, exist_ok=True)
    locked.chmod(0o555)
    try:
        report = run_unprivileged(str(db), str(target))
    finally:
        locked.chmod(0o755)
    assert [Path(m["source"]).name for m in report["moves"]] == ["b_small.jpg"]
    ((source, reason),) = [(s["source"], s["reason"]) for s in report["skipped"]]
    assert source.endswith("a_small.jpg") and "ermission denied" in reason
    after = paths_by_id(db)
    assert after.keys() == before.keys()
    for item_id, path in after.items():  # each item names a file with its own bytes
        assert hashes[sha(Path(path))] == Path(before[item_id]).name
    files = sorted(p.name for p in tmp_path.rglob("*.jpg"))
    assert files == sorted(hashes.values())  # no second copy left anywhere
    assert after[report["moves"][0]["id"]] == report["moves"][0]["destination"]

    undone = undo_move(report["log"])
    assert len(undone.restored) == 1 and len(undone.already) == 1 and not undone.refused
    assert paths_by_id(db) == before


def test_undo_finishes_a_move_that_was_killed_half_way(db: Path, tmp_path: Path) -> None:
    before = paths_by_id(db)
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    done = move_duplicates(groups, tmp_path / "dupes", dry_run=False)
    # As if killed after the library took the new path, before the old name went:
    # the file has both names again.
    first = done.moves[0]
    os.link(first.destination, first.source)
    report = undo_move(done.log_path)
    assert len(report.restored) == 1 and report.already == [first] and not report.refused
    assert paths_by_id(db) == before
    assert not Path(first.destination).exists()


def test_a_move_to_folder_that_cannot_be_made_is_refused_before_anything_moves(
    db: Path, tmp_path: Path
) -> None:
    before = paths_by_id(db)
    blocker = tmp_path / "dupes"
    blocker.write_text("a file where the folder would go")
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    with pytest.raises(InvalidInput, match="cannot make the move-to folder"):
        move_duplicates(groups, blocker / "inside", dry_run=False)
    assert paths_by_id(db) == before and all(os.path.isfile(p) for p in before.values())


def test_a_read_only_library_stops_a_move_before_any_file_is_touched(
    db: Path, dup_folder: Path, tmp_path: Path
) -> None:
    hashes = sorted(sha(p) for p in dup_folder.rglob("*.jpg"))
    before = paths_by_id(db)
    db.chmod(0o444)
    try:
        argv = ["dups", "--db", str(db), "--move-to", str(tmp_path / "dupes"), "--yes"]
        done = picsearch_command(*argv, as_plain_user=True)
    finally:
        db.chmod(0o644)
    assert done.returncode == 1 and "read-only" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "dupes").exists()  # no copy, no log
    assert paths_by_id(db) == before
    assert sorted(sha(p) for p in dup_folder.rglob("*.jpg")) == hashes
