"""The Python API over real files, with the tiny colour encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import solid_photo
from PIL import Image

import picsearch
from picsearch.errors import InvalidInput, LibraryError, ModelMismatch


def names(hits: list[picsearch.Hit]) -> list[str]:
    return [Path(hit.path).name for hit in hits]


def test_index_then_search_by_text_image_and_both(tmp_path: Path, colour_folder: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    summary = lib.index([colour_folder])
    assert (summary.added, summary.skipped, summary.removed) == (4, [], 0)
    assert names(lib.search("something red", k=1)) == ["red.jpg"]
    by_image = lib.search(image=colour_folder / "sub" / "blue.jpg", k=2)
    assert names(by_image)[0] == "blue.jpg" and by_image[0].score == pytest.approx(1.0, abs=1e-5)
    both = lib.search("yellow", image=colour_folder / "red.jpg", k=4)
    assert set(names(both[:2])) == {"yellow.webp", "red.jpg"}
    assert [h.rank for h in both] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(both, both[1:], strict=False))


def test_hits_carry_metadata_and_k_larger_than_library(tmp_path: Path, colour_folder: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    lib.index(colour_folder)
    hits = lib.search("green", k=50)
    assert len(hits) == 4
    assert hits[0].metadata["width"] == 64 and hits[0].metadata["height"] == 48
    assert set(hits[0].to_dict()) >= {"rank", "path", "score"}


def test_search_accepts_a_pil_image(tmp_path: Path, colour_folder: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    lib.index(colour_folder)
    assert names(lib.search(image=Image.open(colour_folder / "green.png"), k=1)) == ["green.png"]


def test_reopened_library_remembers_its_model(tmp_path: Path, colour_folder: Path) -> None:
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
    reopened = picsearch.open(tmp_path / "lib.db")
    assert reopened.model == "tiny"
    assert names(reopened.search("blue", k=1)) == ["blue.jpg"]
    info = reopened.info()
    assert (info.items, info.model, info.dims["joint"]) == (4, "tiny", 8)
    assert info.size_bytes > 0


def test_library_of_another_model_is_refused(tmp_path: Path, colour_folder: Path) -> None:
    picsearch.open(tmp_path / "lib.db", model="tiny").index(colour_folder)
    with pytest.raises(ModelMismatch, match="--model tiny"):
        picsearch.open(tmp_path / "lib.db", model="default")


def test_default_location_follows_environment(
    tmp_path: Path, colour_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PICSEARCH_DB", str(tmp_path / "env.db"))
    picsearch.open(model="tiny").index(colour_folder)
    assert (tmp_path / "env.db").exists()
    monkeypatch.delenv("PICSEARCH_DB")
    lib = picsearch.open(model="tiny")
    assert lib.path == Path(os.environ["XDG_DATA_HOME"]) / "picsearch" / "library.db"


@pytest.mark.parametrize(
    ("query", "kwargs", "message"),
    [
        ("   ", {}, "empty"),
        (None, {}, "nothing to search"),
        ("red", {"k": 0}, "k must"),
        ("red", {"k": -3}, "k must"),
    ],
)
def test_bad_queries_raise_clear_errors(
    tmp_path: Path, colour_folder: Path, query: str | None, kwargs: dict, message: str
) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    lib.index(colour_folder)
    with pytest.raises(InvalidInput, match=message):
        lib.search(query, **kwargs)


def test_query_image_that_is_not_an_image(tmp_path: Path, colour_folder: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    lib.index(colour_folder)
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a picture")
    with pytest.raises(InvalidInput, match="fake.jpg.*not an image"):
        lib.search(image=fake)
    with pytest.raises(InvalidInput, match="missing"):
        lib.search(image=tmp_path / "nowhere.jpg")


def test_missing_library_and_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="no library at"):
        picsearch.open(tmp_path / "missing.db", create=False)
    with pytest.raises(InvalidInput, match="unknown model 'nope'"):
        picsearch.open(tmp_path / "lib.db", model="nope").index(tmp_path)


def test_not_a_library_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="not a picsearch library"):
        picsearch.open(junk)


def test_indexing_a_missing_folder(tmp_path: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    with pytest.raises(InvalidInput, match="does not exist"):
        lib.index([tmp_path / "nope"])


def test_search_on_an_empty_library(tmp_path: Path) -> None:
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    assert lib.search("red") == []


def test_two_folders_one_library(tmp_path: Path, colour_folder: Path) -> None:
    other = tmp_path / "other"
    solid_photo(other / "purple.jpg", "purple")
    lib = picsearch.open(tmp_path / "lib.db", model="tiny")
    lib.index([colour_folder])
    summary = lib.index([other])  # indexing one folder leaves the other's photos alone
    assert (summary.added, summary.removed, len(lib)) == (1, 0, 5)


def test_more_like_a_stored_photo_leaves_it_out(tmp_path: Path, colour_folder: Path) -> None:
    solid_photo(colour_folder / "red2.jpg", "red", size=(80, 60))
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
        red = next(h for h in lib.search("red", k=5) if h.path.endswith("/red.jpg"))
        similar = lib.search(like=red.id, k=2)
        assert names(similar)[0] == "red2.jpg" and red.id not in [h.id for h in similar]
        assert len(similar) == 2
        assert lib.get(red.id).path == red.path and lib.get(red.id).metadata["width"] == 64
        with pytest.raises(InvalidInput, match="no photo with id 999"):
            lib.search(like=999)
        with pytest.raises(InvalidInput, match="not both"):
            lib.search(like=red.id, image=colour_folder / "red.jpg")


def test_date_filters_use_file_times(tmp_path: Path, colour_folder: Path) -> None:
    os.utime(colour_folder / "red.jpg", (1_600_000_000, 1_600_000_000))  # 2020-09-13
    os.utime(colour_folder / "green.png", (1_700_000_000, 1_700_000_000))  # 2023-11-14
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
        old = lib.search("red", k=4, before="2021-01-01")
        assert names(old) == ["red.jpg"]
        window = lib.search("red", k=4, after=1_650_000_000, before="2024-01-01")
        assert names(window) == ["green.png"]
        assert lib.search("red", k=4, folder=colour_folder / "sub", before="2021-01-01") == []
        with pytest.raises(InvalidInput, match="before='last year' is not a date"):
            lib.search("red", before="last year")


def test_vectors_by_space(tmp_path: Path, colour_folder: Path) -> None:
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
        ids, vectors = lib.vectors("joint")
        assert len(ids) == 4 and list(ids) == sorted(ids)
        assert vectors.shape[0] == 4 and abs(float((vectors[0] ** 2).sum()) - 1) < 1e-5
        with pytest.raises(InvalidInput, match="no vector space 'colour'"):
            lib.vectors("colour")


def test_user_metadata_from_a_mapping_or_a_function(tmp_path: Path, colour_folder: Path) -> None:
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder, metadata={colour_folder / "red.jpg": {"sku": 7, "tags": ["a"]}})
        red = lib.search("red", k=1)[0]
        assert red.metadata["sku"] == 7 and red.metadata["tags"] == ["a"]
        assert red.metadata["width"] == 64  # picsearch's own fields stay
        solid_photo(colour_folder / "red.jpg", "red", size=(70, 50))  # the photo changes
        lib.index(colour_folder)
        assert lib.get(red.id).metadata["sku"] == 7  # ...and keeps what was attached
        lib.index(colour_folder, metadata=lambda path: {"name": Path(path).stem})
        assert {h.metadata["name"] for h in lib.search("red", k=4)} == {
            "red",
            "green",
            "blue",
            "yellow",
        }
        with pytest.raises(InvalidInput, match="not JSON-serialisable"):
            lib.index(colour_folder, metadata=lambda path: {"when": object()})
