"""Near-duplicates: LSH candidates, exact grouping, the chain guard, the keeper, the
report, the move and its undo, and the commands."""

from __future__ import annotations

import base64
import io
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import sha, striped
from PIL import Image, ImageEnhance, ImageOps

import picsearch
from picsearch.cli import main
from picsearch.dups import (
    Group,
    LshOptions,
    Member,
    candidate_pairs,
    find_duplicates,
    group_rows,
    keeper_key,
    move_duplicates,
    similar_pairs,
    undo_move,
    write_html_report,
)
from picsearch.errors import InvalidInput

# --------------------------------------------------------------------------- helpers


def planted(n: int, dim: int, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative unit vectors (like CNN features) with ``copies`` noisy copies planted."""
    rng = np.random.default_rng(seed)
    base = np.maximum(rng.normal(0.2, 1.0, (n - copies, dim)), 0)
    source = rng.integers(0, n - copies, copies)
    noise = rng.uniform(0.05, 0.6, (copies, 1)) * rng.normal(0, 1, (copies, dim))
    vectors = np.vstack([base, np.maximum(base[source] + noise, 0)]).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), source


def exact_pairs(vectors: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    sims = vectors @ vectors.T
    a, b = np.nonzero(np.triu(sims >= threshold, k=1))
    return set(zip(a.tolist(), b.tolist(), strict=True))


@pytest.fixture
def dup_folder(tmp_path: Path) -> Path:
    """Three originals, two with near-duplicates (resized, re-compressed, brightened)."""
    folder = tmp_path / "photos"
    striped(folder / "a.jpg", 1)
    (folder / "sub").mkdir()
    Image.open(folder / "a.jpg").resize((96, 72)).save(folder / "sub" / "a_small.jpg", quality=40)
    striped(folder / "b.jpg", 2, size=(200, 150))
    bright = ImageEnhance.Brightness(Image.open(folder / "b.jpg")).enhance(1.1)
    bright.save(folder / "b_bright.jpg", quality=80)
    striped(folder / "c.jpg", 3)
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path, dup_folder: Path) -> str:
    path = str(tmp_path / "lib.db")
    with picsearch.open(path, model="tiny") as library:
        library.index([dup_folder])
    return path


# --------------------------------------------------------------------------- LSH


def test_lsh_finds_the_pairs_exact_search_finds() -> None:
    vectors, _ = planted(5000, 96, copies=500)
    truth = exact_pairs(vectors, 0.8)
    pairs, sims = similar_pairs(vectors, threshold=0.8, lsh=LshOptions(seed=1))
    confirmed = {tuple(p) for p in pairs.tolist()}
    assert len(truth) >= 400
    assert confirmed <= truth and len(confirmed) / len(truth) >= 0.97  # recall floor
    assert sims.min() >= 0.8
    cosines = np.einsum("ij,ij->i", vectors[pairs[:, 0]], vectors[pairs[:, 1]])
    np.testing.assert_allclose(sims, cosines, atol=1e-5)
    # Without LSH (a small library) every pair is compared: exactly the truth.
    exact, _ = similar_pairs(vectors[:3000], threshold=0.8)
    assert {tuple(p) for p in exact.tolist()} == exact_pairs(vectors[:3000], 0.8)


def test_lsh_is_seeded_and_caps_crowded_buckets() -> None:
    vectors, _ = planted(600, 32, copies=60)
    first = candidate_pairs(vectors, LshOptions(seed=3))
    assert np.array_equal(first, candidate_pairs(vectors, LshOptions(seed=3)))
    assert not np.array_equal(first, candidate_pairs(vectors, LshOptions(seed=4)))
    # 3000 nearly identical vectors all share every bucket: the window keeps it linear.
    crowd = np.ones((3000, 64), np.float32) + np.random.default_rng(0).normal(0, 1e-3, (3000, 64))
    options = LshOptions(tables=2, bits=4, window=8)
    pairs = candidate_pairs(crowd.astype(np.float32), options)
    assert len(pairs) <= options.tables * 2 * options.window * len(crowd)
    assert len(pairs) < len(crowd) * (len(crowd) - 1) // 20


def test_lsh_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="tables"):
        candidate_pairs(np.eye(3, dtype=np.float32), LshOptions(tables=0))


# --------------------------------------------------------------------------- grouping


def test_exact_grouping() -> None:
    rng = np.random.default_rng(5)
    centres = np.linalg.qr(rng.normal(size=(32, 32)))[0][:4]
    vectors = np.vstack(
        [
            centres[0],
            centres[0] + 0.1 * centres[1],
            centres[2],
            centres[2] + 0.2 * centres[3],
            centres[2] - 0.2 * centres[3],
            centres[3],
        ]
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs, sims = similar_pairs(vectors, threshold=0.9)
    groups = group_rows(vectors, pairs, sims, guard=0.8)
    assert sorted(sorted(g.tolist()) for g in groups) == [[0, 1], [2, 3, 4]]


def test_chain_guard_splits_a_chain_of_merely_similar_photos() -> None:
    # Twelve unit vectors turning by 20 degrees: neighbours agree (0.94), the ends do not.
    angles = np.deg2rad(np.arange(12) * 20.0)
    vectors = np.zeros((12, 8), np.float32)
    vectors[:, 0], vectors[:, 1] = np.cos(angles), np.sin(angles)
    pairs, sims = similar_pairs(vectors, threshold=0.9)
    assert len(group_rows(vectors, pairs, sims, guard=-1.0)) == 1  # no guard: one chain
    groups = group_rows(vectors, pairs, sims, guard=0.8)
    assert len(groups) > 1 and sum(len(g) for g in groups) <= 12
    for rows in groups:
        sims_in = vectors[rows] @ vectors[rows].T
        centre = int(np.argmax(sims_in.sum(axis=1)))
        assert sims_in[centre].min() >= 0.8


def test_keeper_rule_resolution_then_size_then_age() -> None:
    def member(i: int, w: int, h: int, size: int, mtime: float) -> Member:
        return Member(id=i, path=f"/p/{i}.jpg", width=w, height=h, size=size, mtime=mtime)

    members = [
        member(1, 800, 600, 900, 10.0),
        member(2, 1600, 1200, 100, 30.0),
        member(3, 1600, 1200, 500, 20.0),
        member(4, 1600, 1200, 500, 5.0),
    ]
    assert [m.id for m in sorted(members, key=keeper_key)] == [4, 3, 2, 1]


def test_find_duplicates_groups_copies_keeper_first(db: str, dup_folder: Path) -> None:
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    names = [sorted(Path(m.path).name for m in g.members) for g in groups]
    assert sorted(names) == [["a.jpg", "a_small.jpg"], ["b.jpg", "b_bright.jpg"]]
    for group in groups:
        assert group.members[0].id == group.keeper
        assert Path(group.members[0].path).name in ("a.jpg", "b.jpg")  # the larger one
        ((a, b, score),) = group.pairs
        assert {a, b} == {m.id for m in group.members} and 0.95 <= score <= 1.0 + 1e-6
        assert group.to_dict()["members"][0]["keeper"] is True


def test_threshold_is_checked(db: str) -> None:
    with picsearch.open(db) as library, pytest.raises(InvalidInput, match="threshold"):
        find_duplicates(library, threshold=1.5)


# --------------------------------------------------------------------------- report


class _Report(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections, self.images, self.keepers, self.text = 0, [], 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.sections += 1
        if tag == "img":
            self.images.append(found["src"])
        if tag == "figure" and "keeper" in (found.get("class") or "").split():
            self.keepers += 1
        if tag in ("script", "link", "iframe"):
            raise AssertionError(f"external or active content: <{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_is_self_contained_with_escaped_paths(db: str, tmp_path: Path) -> None:
    odd = tmp_path / "photos" / "x<b>&\"q'.jpg"
    Image.open(tmp_path / "photos" / "c.jpg").save(odd, quality=70)
    with picsearch.open(db) as library:
        library.index([tmp_path / "photos"])
        groups = find_duplicates(library, threshold=0.95)
    (tmp_path / "photos" / "a.jpg").unlink()  # a missing file gets a placeholder card
    groups = [*groups, Group(members=[*groups[0].members], keeper=groups[0].keeper, pairs=[])]
    source = write_html_report(groups, tmp_path / "out" / "report.html").read_text("utf-8")
    report = _Report()
    report.feed(source)
    assert report.sections == len(groups) == 4 and report.keepers == 4
    assert len(report.images) == sum(len(g.members) for g in groups)
    for uri in report.images:
        assert uri.startswith("data:image/jpeg;base64,")
        Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).verify()
    assert "x<b>" not in source and "x&lt;b&gt;&amp;&quot;q&#x27;.jpg" in source
    assert any("x<b>&\"q'.jpg" in text for text in report.text)  # it reads back as the name
    assert "http://" not in source and "https://" not in source


# --------------------------------------------------------------------------- move and undo


def test_move_dry_run_then_move_then_undo_restores_bytes(db: str, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    before = {p: sha(p) for p in photos.rglob("*.jpg")}
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    target = tmp_path / "dupes"
    plan = move_duplicates(groups, target)
    assert plan.dry_run and len(plan.moves) == 2 and not target.exists()
    assert {p: sha(p) for p in photos.rglob("*.jpg")} == before

    done = move_duplicates(groups, target, dry_run=False)
    moved = {Path(m.source) for m in done.moves}
    assert {p.name for p in moved} == {"a_small.jpg", "b_bright.jpg"}
    assert not any(p.exists() for p in moved)
    assert (target / "sub" / "a_small.jpg").exists()  # the folder structure is kept
    logged = [json.loads(line) for line in Path(done.log_path).read_text().splitlines()]
    assert logged[0]["format"] == "picsearch-move-log"
    assert {r["sha256"] for r in logged[1:]} == {before[p] for p in moved}
    with picsearch.open(db) as library:  # the library follows the moved photos
        again = find_duplicates(library, threshold=0.95)
    assert {m.path for g in again for m in g.members if m.id != g.keeper} == {
        m.destination for m in done.moves
    }
    assert move_duplicates(again, target).moves == []  # already in the move-to folder

    report = undo_move(done.log_path)
    assert len(report.restored) == 2 and not report.refused
    assert {p: sha(p) for p in photos.rglob("*.jpg")} == before
    again = undo_move(done.log_path)
    assert len(again.already) == 2 and not again.restored and not again.refused


def test_move_never_overwrites_and_undo_refuses_what_changed(db: str, tmp_path: Path) -> None:
    with picsearch.open(db) as library:
        groups = find_duplicates(library, threshold=0.95)
    target = tmp_path / "dupes"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "a_small.jpg").write_bytes(b"someone else's file")
    done = move_duplicates(groups, target, dry_run=False)
    assert (target / "sub" / "a_small.jpg").read_bytes() == b"someone else's file"
    assert (target / "sub" / "a_small (1).jpg").exists()

    b_bright = next(Path(m.source) for m in done.moves if m.source.endswith("b_bright.jpg"))
    b_bright.write_bytes(b"a new file where the old one was")
    moved_a = next(Path(m.destination) for m in done.moves if m.source.endswith("a_small.jpg"))
    moved_a.write_bytes(b"edited after the move")
    report = undo_move(done.log_path)
    reasons = sorted(reason for _, reason in report.refused)
    assert len(reasons) == 2 and not report.restored
    assert "changed" in reasons[0] and "taken again" in reasons[1]
    assert b_bright.read_bytes() == b"a new file where the old one was"


# --------------------------------------------------------------------------- commands


def test_dups_command_json_html_and_move(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html_path = tmp_path / "r.html"
    code, out, err = run(
        capsys,
        "dups",
        "--db",
        db,
        "--threshold",
        "0.95",
        "--json",
        "--html",
        str(html_path),
        "--move-to",
        str(tmp_path / "dupes"),
    )
    result = json.loads(out)
    assert code == 0 and result["threshold"] == 0.95 and len(result["groups"]) == 2
    assert result["move"]["dry_run"] is True and len(result["move"]["moves"]) == 2
    assert html_path.exists() and "dry run" in err and "add --yes" in err

    code, out, err = run(
        capsys,
        "dups",
        "--db",
        db,
        "--threshold",
        "0.95",
        "--move-to",
        str(tmp_path / "dupes"),
        "--yes",
    )
    assert code == 0 and out.count("moved: ") == 2 and "--undo" in err
    log_path = err.split("picsearch dups --undo ")[1].split()[0]
    code, out, err = run(capsys, "dups", "--undo", log_path)
    assert code == 0 and "moved back 2 files" in err


def test_dups_indexes_folders_first(
    tmp_path: Path, dup_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = str(tmp_path / "new.db")
    code, out, err = run(
        capsys,
        "dups",
        str(dup_folder),
        "--db",
        db_path,
        "--model",
        "tiny",
        "--threshold",
        "0.95",
        "-q",
    )
    assert code == 0 and "added 5" in err
    assert out.count("group ") == 2 and out.count(" keep ") == 2


def test_similar_by_id_and_by_image(
    db: str, dup_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with picsearch.open(db) as library:
        a_id = next(h.id for h in library.search(image=dup_folder / "a.jpg", k=1))
    code, out, _ = run(capsys, "similar", str(a_id), "--db", db, "-k", "2", "--json")
    hits = json.loads(out)
    assert code == 0 and hits[0]["path"].endswith("a_small.jpg") and len(hits) == 2
    code, out, _ = run(capsys, "similar", str(dup_folder / "b_bright.jpg"), "--db", db, "-k", "2")
    assert code == 0 and out.splitlines()[0].endswith("b_bright.jpg")
    assert out.splitlines()[1].endswith("b.jpg")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dups", "--yes"], "--move-to"),
        (["dups", "--threshold", "1.5"], "threshold"),
        (["dups", "--undo", "nowhere.jsonl"], "no move log"),
        (["dups", "--undo", "x.jsonl", "--html", "r.html"], "on its own"),
        (["similar", "999"], "no photo with id 999"),
        (["similar", "missing.jpg"], "neither an image file nor a photo id"),
    ],
)
def test_command_errors_are_one_line(
    db: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv, "--db", db)
    assert code == 1 and out == ""
    assert err.startswith("picsearch: error: ") and message in err and err.count("\n") == 1


def test_move_to_inside_the_indexed_folder_is_refused(
    tmp_path: Path, dup_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        "dups",
        str(dup_folder),
        "--db",
        str(tmp_path / "x.db"),
        "--model",
        "tiny",
        "--move-to",
        str(dup_folder / "dupes"),
    )
    assert code == 1 and "inside" in err


# --------------------------------------------------------------------------- real photos


@pytest.mark.slow
def test_real_photos_with_edited_copies_default_model(tmp_path: Path) -> None:
    from picsearch.samples import write_sample_photos

    folder = tmp_path / "photos"
    originals = write_sample_photos(folder, ["chelsea", "coffee", "astronaut", "rocket", "china"])
    write_sample_photos(tmp_path / "others", ["brick", "camera", "horse", "motorcycle", "flower"])
    for photo in tmp_path.joinpath("others").iterdir():
        os.replace(photo, folder / photo.name)
    for path in originals:
        image = Image.open(path)
        w, h = image.size
        image.resize((w * 3 // 5, h * 3 // 5)).save(folder / f"{path.stem}_small.jpg", quality=35)
        image.crop((w // 10, h // 10, w - w // 20, h - h // 20)).save(
            folder / f"{path.stem}_crop.jpg"
        )
        ImageOps.mirror(image).save(folder / f"{path.stem}_flip.jpg", quality=85)
    with picsearch.open(tmp_path / "lib.db") as library:
        library.index([folder])
        groups = find_duplicates(library)
    found = sorted(sorted(Path(m.path).stem for m in g.members) for g in groups)
    expected = sorted(
        sorted([p.stem, f"{p.stem}_crop", f"{p.stem}_flip", f"{p.stem}_small"]) for p in originals
    )
    assert found == expected
    for group in groups:  # the untouched original has the most pixels
        assert "_" not in Path(group.members[0].path).stem


def test_turned_copies_are_found_only_with_turned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "turned"
    upright = [striped(folder / f"{i}.png", seed=100 + i) for i in range(4)]
    Image.open(upright[0]).transpose(Image.Transpose.ROTATE_90).save(folder / "0-left.png")
    Image.open(upright[1]).transpose(Image.Transpose.ROTATE_180).save(folder / "1-down.png")
    with picsearch.open(tmp_path / "t.db", model="tiny") as library:
        library.index([folder])
        assert find_duplicates(library, threshold=0.95) == []
        groups = find_duplicates(library, threshold=0.95, turned=True)
        (folder / "3.png").unlink()  # unreadable now: keeps its upright vector, still works
        again = find_duplicates(library, threshold=0.95, turned=True)
    found = sorted(sorted(Path(m.path).name for m in g.members) for g in groups)
    assert found == [["0-left.png", "0.png"], ["1-down.png", "1.png"]]
    assert all(score > 0.99 for g in groups for _, _, score in g.pairs)
    assert len(again) == 2
    code, out, _ = run(capsys, "dups", "--db", str(tmp_path / "t.db"), "--turned", "--json")
    assert code == 0 and len(json.loads(out)["groups"]) == 2
