"""End to end with the real built-in model on the photos that ship in packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import picsearch
from picsearch.samples import write_sample_photos

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def sample_library(tmp_path_factory: pytest.TempPathFactory, model_cache: Path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PICSEARCH_CACHE", str(model_cache))
        folder = tmp_path_factory.mktemp("samples")
        write_sample_photos(folder)
        lib = picsearch.open(folder / "lib.db", model="default")
        summary = lib.index(folder)
        assert summary.added == len(list(folder.glob("*.jpg"))) and not summary.skipped
        yield folder, lib
        lib.close()


def top(hits: list[picsearch.Hit]) -> str:
    return Path(hits[0].path).stem


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a photo of a cat", "chelsea"),
        ("a cup of coffee", "coffee"),
        ("a motorcycle", "motorcycle"),
        ("a rocket", "rocket"),
    ],
)
def test_text_query_finds_the_right_photo(sample_library, query: str, expected: str) -> None:
    _, lib = sample_library
    assert top(lib.search(query, k=3)) == expected


def test_an_edited_copy_finds_its_original(sample_library, tmp_path: Path) -> None:
    folder, lib = sample_library
    query = tmp_path / "query.jpg"
    original = Image.open(folder / "chelsea.jpg")
    original.crop((40, 20, 330, 280)).resize((200, 180)).save(query, quality=50)
    hits = lib.search(image=query, k=3)
    assert top(hits) == "chelsea" and hits[0].score > hits[1].score + 0.1


def test_combined_query_blends_both(sample_library) -> None:
    folder, lib = sample_library
    hits = lib.search("a flower", image=folder / "chelsea.jpg", k=2)
    assert {Path(h.path).stem for h in hits} == {"chelsea", "flower"}
