"""One search as one object: Library.search takes a SearchQuery, keywords build the same."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

import picsearch
from picsearch import SearchQuery
from picsearch.errors import InvalidInput
from picsearch.query import moment_ns


def names(hits: list[picsearch.Hit]) -> list[str]:
    return [Path(hit.path).name for hit in hits]


def test_a_query_object_finds_what_its_keywords_find(tmp_path: Path, colour_folder: Path) -> None:
    os.utime(colour_folder / "red.jpg", (1_600_000_000, 1_600_000_000))
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
        fields = {"k": 3, "image": colour_folder / "green.png", "after": "2021-01-01"}
        query = SearchQuery(text="yellow", **fields)
        assert lib.search(query) == lib.search("yellow", **fields)
        assert lib.search(query) == lib.search(text="yellow", **fields)
        assert "red.jpg" not in names(lib.search(query))
        red = next(hit for hit in lib.search("red", k=4) if hit.path.endswith("red.jpg"))
        like = lib.search(SearchQuery(like=red.id, k=4))
        assert red.id not in [hit.id for hit in like] and len(like) == 3


def test_a_query_object_with_keywords_is_refused(tmp_path: Path, colour_folder: Path) -> None:
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
        with pytest.raises(InvalidInput, match="not both: put folder, k in the SearchQuery"):
            lib.search(SearchQuery(text="red"), k=2, folder=colour_folder)


def test_a_query_is_checked_like_keywords(tmp_path: Path, colour_folder: Path) -> None:
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(colour_folder)
        with pytest.raises(InvalidInput, match="k must be a whole number"):
            lib.search(SearchQuery(text="red", k=0))
        with pytest.raises(InvalidInput, match="nothing to search for"):
            lib.search(SearchQuery())


def test_a_query_is_frozen_and_takes_keywords_only() -> None:
    query = SearchQuery(text="a cat")
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.k = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        SearchQuery("a cat")  # type: ignore[misc]


def test_moments_read_as_unix_nanoseconds() -> None:
    assert moment_ns(None, "after") is None
    assert moment_ns(1.5, "after") == 1_500_000_000
    with pytest.raises(InvalidInput, match="before='soon' is not a date"):
        moment_ns("soon", "before")
    with pytest.raises(InvalidInput, match="out of range"):
        moment_ns(1e12, "after")
