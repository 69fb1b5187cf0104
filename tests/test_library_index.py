"""The library searches through its ANN index transparently, and keeps it up to date."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import picsearch


def random_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        path = folder / f"r{seed}-{i:04}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def stems(hits: list[picsearch.Hit]) -> list[str]:
    return [Path(h.path).stem for h in hits]


@pytest.mark.parametrize("backend", ["scann", "faiss"])
def test_index_backend_agrees_with_exact(tmp_path: Path, backend: str) -> None:
    photos = random_photos(tmp_path / "photos", 300)
    exact = picsearch.open(tmp_path / "exact.db", model="tiny", index="exact")
    approx = picsearch.open(tmp_path / "approx.db", model="tiny", index=backend)
    exact.index(tmp_path / "photos")
    approx.index(tmp_path / "photos")
    assert list((tmp_path / "approx.db.index").glob("visual-*"))
    agree = 0
    for query in photos[:20]:
        truth = stems(exact.search(image=query, k=10))
        found = stems(approx.search(image=query, k=10))
        assert found[0] == query.stem  # a photo's own copy is always found first
        agree += len(set(truth) & set(found))
    assert agree / 200 >= 0.8
    info = approx.info()
    assert info.indexes["visual"]["backend"] == backend
    assert info.indexes["visual"]["size"] == 300


def test_live_updates_reach_a_reader_without_rebuild(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    random_photos(folder, 200)
    writer = picsearch.open(tmp_path / "lib.db", model="tiny", index="scann")
    writer.index(folder)
    reader = picsearch.open(tmp_path / "lib.db", index="scann")
    query = folder / "r0-0005.png"
    assert stems(reader.search(image=query, k=1)) == ["r0-0005"]
    added = random_photos(folder, 5, seed=1)
    query.unlink()
    writer.index(folder)
    assert stems(reader.search(image=added[2], k=1)) == [added[2].stem]
    assert "r0-0005" not in stems(reader.search(image=added[0], k=205))
    assert len(reader.search(image=added[0], k=500)) == 204


def test_folder_filter_returns_k_from_that_folder(tmp_path: Path) -> None:
    random_photos(tmp_path / "photos" / "a", 120, seed=1)
    random_photos(tmp_path / "photos" / "b", 30, seed=2)
    lib = picsearch.open(tmp_path / "lib.db", model="tiny", index="faiss")
    lib.index(tmp_path / "photos")
    hits = lib.search("red", k=12, folder=tmp_path / "photos" / "b")
    assert len(hits) == 12 and all(Path(h.path).parent.name == "b" for h in hits)
    assert lib.search("red", folder=tmp_path / "elsewhere") == []


def test_small_library_saves_no_index(tmp_path: Path, colour_folder: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    lib.index(colour_folder)
    assert lib.info().indexes["joint"]["backend"] == "exact"
    assert not list((tmp_path / "lib.db.index").glob("joint-*"))


def test_unknown_index_backend(tmp_path: Path) -> None:
    with pytest.raises(picsearch.InvalidInput, match="backend"):
        picsearch.open(tmp_path / "lib.db", model="tiny", index="annoy")


def test_auto_moves_from_exact_to_an_index_as_the_library_grows(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    random_photos(folder, 40)
    options = picsearch.ann.IndexOptions(backend="auto", exact_below=100)
    lib = picsearch.open(tmp_path / "lib.db", model="tiny", index=options)
    lib.index(folder)
    assert lib.info().indexes["visual"]["backend"] == "exact"
    random_photos(folder, 400, seed=3)
    lib.index(folder)
    visual = lib.info().indexes["visual"]
    assert visual["backend"] in ("scann", "faiss") and visual["size"] == 440
    assert visual["recall@10"] >= 0.9
    reopened = picsearch.open(tmp_path / "lib.db")
    query = folder / "r3-0007.png"
    assert stems(reopened.search(image=query, k=1)) == ["r3-0007"]


def test_combined_query_through_an_index_matches_exact(tmp_path: Path) -> None:
    photos = random_photos(tmp_path / "photos", 300)
    exact = picsearch.open(tmp_path / "exact.db", model="tiny", index="exact")
    approx = picsearch.open(tmp_path / "approx.db", model="tiny", index="faiss")
    exact.index(tmp_path / "photos")
    approx.index(tmp_path / "photos")
    truth = exact.search("red", image=photos[3], k=5)
    found = approx.search("red", image=photos[3], k=5)
    assert stems(found)[0] == stems(truth)[0] == photos[3].stem
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
    assert found[0].score == pytest.approx(truth[0].score, abs=1e-5)
