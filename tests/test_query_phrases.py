"""Queries that say when and where: dates and the library's places read from the
words, turned into filters, the rest searched; ordinary words never become dates."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_photo_info import LISBON, PARIS, exif_jpeg, write

import picsearch
from picsearch.cli import main
from picsearch.query_phrases import Understood, describe, understand

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

#: "Today" for every phrase relative to it: no clock in the tests.
TODAY = dt.date(2026, 12, 2)
PLACES = ["Lisbon", "Portugal", "Lisboa", "New York", "São Paulo", "United States"]


def read(query: str, today: dt.date = TODAY) -> Understood:
    return understand(query, today=today, places=PLACES)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# (query, words left, after, before (exclusive), place)
WRITTEN = [
    ("beach in Lisbon summer 2019", "beach", "2019-06-01", "2019-09-01", "Lisbon"),
    ("2019", None, "2019-01-01", "2020-01-01", None),
    ("dog in 2019", "dog", "2019-01-01", "2020-01-01", None),
    ("July 2019 fireworks", "fireworks", "2019-07-01", "2019-08-01", None),
    ("fireworks in july of 2019", "fireworks", "2019-07-01", "2019-08-01", None),
    ("cake in june", "cake", "2026-06-01", "2026-07-01", None),
    ("snow in december", "snow", "2026-12-01", "2027-01-01", None),
    ("march 2020 protest", "protest", "2020-03-01", "2020-04-01", None),
    ("in may 2018", None, "2018-05-01", "2018-06-01", None),
    ("in june 2019", None, "2019-06-01", "2019-07-01", None),
    ("summer 2019", None, "2019-06-01", "2019-09-01", None),
    ("spring 2020 flowers", "flowers", "2020-03-01", "2020-06-01", None),
    ("fall 2018 leaves", "leaves", "2018-09-01", "2018-12-01", None),
    ("autumn 2018", None, "2018-09-01", "2018-12-01", None),
    ("winter 2019 ski", "ski", "2019-12-01", "2020-03-01", None),
    ("winter 2023", None, "2023-12-01", "2024-03-01", None),
    ("last summer", None, "2026-06-01", "2026-09-01", None),
    ("this summer", None, "2026-06-01", "2026-09-01", None),
    ("last winter", None, "2025-12-01", "2026-03-01", None),
    ("last year", None, "2025-01-01", "2026-01-01", None),
    ("this year party", "party", "2026-01-01", "2027-01-01", None),
    ("two years ago", None, "2024-01-01", "2025-01-01", None),
    ("3 years ago", None, "2023-01-01", "2024-01-01", None),
    ("two months ago", None, "2026-10-01", "2026-11-01", None),
    ("last month", None, "2026-11-01", "2026-12-01", None),
    ("this month", None, "2026-12-01", "2027-01-01", None),
    ("yesterday", None, "2026-12-01", "2026-12-02", None),
    ("last may", None, "2026-05-01", "2026-06-01", None),
    ("last december", None, "2025-12-01", "2026-01-01", None),
    ("sunset New York", "sunset", None, None, "New York"),
    ("tram in lisbon", "tram", None, None, "Lisbon"),
    ("street at sao paulo", "street", None, None, "São Paulo"),
    ("PORTUGAL coast", "coast", None, None, "Portugal"),
    (
        "bridge in the United States 2020",
        "bridge in the",
        "2020-01-01",
        "2021-01-01",
        "United States",
    ),  # noqa: E501
    ("tram, Lisbon, 2019", "tram,", "2019-01-01", "2020-01-01", "Lisbon"),
]


@pytest.mark.parametrize(("query", "words", "after", "before", "place"), WRITTEN)
def test_written_phrases_are_found(
    query: str, words: str | None, after: str | None, before: str | None, place: str | None
) -> None:
    understood = read(query)
    assert understood.text == words
    assert understood.after == (d(after) if after else None)
    assert understood.before == (d(before) if before else None)
    assert understood.place == place


ORDINARY = [
    "soldiers march",
    "march of the penguins",
    "may flowers",
    "this may hurt",
    "spring water",
    "fall leaves",
    "waterfall",
    "a winter coat",
    "summer dress",
    "the last supper",
    "june bug",
    "the year of the dragon",
    "august light",
    "room 12",
    "1234 main street",
    "years ago",
    "lisboeta",
    "new shoes",
    "york minster",
]


@pytest.mark.parametrize("query", ORDINARY)
def test_ordinary_words_invent_no_date_or_place(query: str) -> None:
    assert read(query) == Understood(text=query)


def test_last_summer_while_summer_is_under_way_is_the_one_before() -> None:
    understood = read("last summer", today=d("2026-07-15"))
    assert (understood.after, understood.before) == (d("2025-06-01"), d("2025-09-01"))


def test_this_winter_in_february_began_the_year_before() -> None:
    understood = read("this winter", today=d("2026-02-10"))
    assert (understood.after, understood.before) == (d("2025-12-01"), d("2026-03-01"))


def test_in_a_month_not_yet_come_this_year_is_last_years() -> None:
    understood = read("in june", today=d("2026-03-10"))
    assert understood.after == d("2025-06-01")


def test_only_the_first_date_phrase_is_a_filter() -> None:
    understood = read("2019 2020")
    assert (understood.text, understood.after) == ("2020", d("2019-01-01"))


def test_seasons_of_a_year_and_iso_months() -> None:
    understood = read("in the summer of 2019")
    assert (understood.text, understood.after, understood.before) == (
        None,
        d("2019-06-01"),
        d("2019-09-01"),
    )
    understood = read("2021-07 road trip")
    assert (understood.text, understood.after) == ("road trip", d("2021-07-01"))
    assert read("2021-13 road trip") == Understood(text="2021-13 road trip")


WHOLE_DAYS = [
    ("3 May 2019", None, "2019-05-03"),
    ("picnic on 2019-05-03", "picnic", "2019-05-03"),
    ("wedding May 3rd, 2019", "wedding", "2019-05-03"),
    ("concert on 31 December 2019 Lisbon", "concert", "2019-12-31"),
]


@pytest.mark.parametrize(("query", "words", "day"), WHOLE_DAYS)
def test_days_written_in_full_are_read_by_dateparser(
    query: str, words: str | None, day: str
) -> None:
    pytest.importorskip("dateparser")
    understood = read(query)
    assert (understood.text, understood.after) == (words, d(day))
    assert understood.before == d(day) + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("query", "after", "before"),
    [
        ("May 2019 3 kids", "2019-05-01", "2019-06-01"),
        ("room 101 in 2019", "2019-01-01", "2020-01-01"),
    ],
)
def test_a_year_and_another_number_are_no_day(query: str, after: str, before: str) -> None:
    """A day is read only where it ends with its year, or is ISO: the 3 counts kids."""
    understood = read(query)
    assert (understood.after, understood.before) == (d(after), d(before))


def test_the_day_parser_reads_a_few_words_of_a_long_query() -> None:
    """A query of 1,000 characters (the HTTP limit) full of dates: the parser sees the
    words before the first years only, not the whole query (which took over a second)."""
    pytest.importorskip("dateparser")
    read("3 May 2019")  # the parser's first call loads its data
    start = time.perf_counter()
    understood = read(("3 May 2019 " * 100)[:1000])
    assert time.perf_counter() - start < 0.3
    assert understood.after == d("2019-05-03")


def test_without_dateparser_a_whole_day_is_its_month(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dateparser.search", None)
    understood = read("wedding 3 May 2019")
    assert (understood.after, understood.before) == (d("2019-05-01"), d("2019-06-01"))


def test_dates_off_leaves_them_as_words() -> None:
    understood = understand("beach 2019", today=TODAY, dates=False)
    assert understood == Understood(text="beach 2019")


def test_no_places_known_no_place_read() -> None:
    assert understand("tram in lisbon", today=TODAY) == Understood(text="tram in lisbon")


def test_describe_says_dates_place_and_words() -> None:
    assert describe(read("beach in Lisbon summer 2019")) == (
        'taken 2019-06-01..2019-08-31, place Lisbon; searching "beach"'
    )
    alone = "taken 2019-01-01..2019-12-31, place Lisbon; filters only"
    assert describe(read("in Lisbon 2019")) == alone


# -- the command line ------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A library of a red Lisbon photo (July 2019), a blue Paris one (April 2021) and a
    green one with no EXIF."""
    trip = tmp_path / "trip"
    lisbon = exif_jpeg(colour="red", taken="2019:07:14 18:30:00", offset="+01:00", gps=LISBON)
    paris = exif_jpeg(colour="blue", taken="2021:04:02 09:00:00", offset="+02:00", gps=PARIS)
    write(trip / "lisbon.jpg", lisbon)
    write(trip / "paris.jpg", paris)
    write(trip / "plain.jpg", exif_jpeg(colour="green"))
    path = str(tmp_path / "cli.db")
    code, _, err = run(capsys, "index", str(trip), "--db", path, "--model", "tiny")
    assert code == 0, err
    return path


def test_cli_reads_when_and_where_and_says_so(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "search", "red in Lisbon summer 2019", "--db", db, "--json")
    assert code == 0, err
    hits = json.loads(out)
    assert [Path(hit["path"]).name for hit in hits] == ["lisbon.jpg"]
    assert 'picsearch: taken 2019-06-01..2019-08-31, place Lisbon; searching "red"' in err
    understood = hits[0]["understood"]
    assert (understood["text"], understood["place"]) == ("red", "Lisbon")
    assert (understood["after"], understood["before"]) == ("2019-06-01", "2019-09-01")
    code, out, _ = run(capsys, "search", "red", "--db", db, "--json")
    assert code == 0 and all("understood" not in hit for hit in json.loads(out))


def test_cli_phrases_alone_are_a_filter_only_search(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "in 2021", "--db", db)
    assert code == 0, err
    assert out.strip().endswith("paris.jpg") and len(out.splitlines()) == 1
    assert "filters only" in err
    code, out, _ = run(capsys, "search", "paris summer 2019", "--db", db)
    assert code == 0 and out == ""


def test_cli_literal_searches_the_words_as_written(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "red in Lisbon summer 2019", "--literal", "--db", db)
    assert code == 0, err
    assert len(out.splitlines()) == 3 and "taken" not in err


def test_cli_flags_given_by_hand_win(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "search", "red 2019", "--after", "2021-01-01", "--db", db)
    assert code == 0, err
    assert out.strip().endswith("paris.jpg") and "taken" not in err


# -- Python ----------------------------------------------------------------------------


def test_python_search_understands_when_asked_and_says_what(db: str) -> None:
    with picsearch.open(db, create=False) as library:
        results = library.search("red in Lisbon summer 2019", understand=True)
        assert [Path(hit.path).name for hit in results] == ["lisbon.jpg"]
        assert results.understood == Understood(
            text="red", after=d("2019-06-01"), before=d("2019-09-01"), place="Lisbon"
        )
        alone = library.search("in 2021", understand=True)
        assert [Path(hit.path).name for hit in alone] == ["paris.jpg"]
        assert alone.understood is not None and alone.understood.text is None


def test_python_search_is_literal_unless_asked(db: str) -> None:
    with picsearch.open(db, create=False) as library:
        results = library.search("red in Lisbon summer 2019", k=5)
        assert isinstance(results, list) and len(results) == 3
        assert results.understood is None
        plain = library.search("red", understand=True)
        assert len(plain) == 3 and plain.understood is None


def test_python_filters_given_by_hand_win(db: str) -> None:
    with picsearch.open(db, create=False) as library:
        query = picsearch.SearchQuery(text="red 2019 Lisbon", after="2021-01-01", k=5)
        results = library.search(query, understand=True)
        assert [Path(hit.path).name for hit in results] == []  # Lisbon and 2021: none
        assert results.understood == Understood(text="red 2019", place="Lisbon")


def test_understand_helper_takes_places_and_today() -> None:
    understood = picsearch.understand("tram in Lisbon last summer", places=["Lisbon"], today=TODAY)
    assert understood.to_dict() == {
        "text": "tram",
        "after": "2026-06-01",
        "before": "2026-09-01",
        "place": "Lisbon",
        "summary": 'taken 2026-06-01..2026-08-31, place Lisbon; searching "tram"',
    }


# -- HTTP ------------------------------------------------------------------------------


@pytest.fixture
def client(db: str, tmp_path: Path) -> Iterator[TestClient]:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from picsearch.server import create_app

    app = create_app(db, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def names(body: dict) -> list[str]:
    return [hit["name"] for hit in body["hits"]]


def test_http_understands_phrases_by_default(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "red in Lisbon summer 2019"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert names(body) == ["lisbon.jpg"]
    assert body["understood"] == {
        "text": "red",
        "after": "2019-06-01",
        "before": "2019-09-01",
        "place": "Lisbon",
        "summary": 'taken 2019-06-01..2019-08-31, place Lisbon; searching "red"',
    }
    assert body["query"]["text"] == "red in Lisbon summer 2019"


def test_http_literal_searches_the_words_as_written(client: TestClient) -> None:
    params = {"q": "red in Lisbon summer 2019", "literal": "true"}
    body = client.get("/api/search", params=params).json()
    assert len(body["hits"]) == 3 and body["understood"] is None
    assert body["query"]["literal"] is True


def test_http_phrases_alone_and_hand_filters(client: TestClient) -> None:
    body = client.get("/api/search", params={"q": "in 2021"}).json()
    assert names(body) == ["paris.jpg"] and body["understood"]["text"] is None
    params = {"q": "red 2019", "after": "2021-01-01"}
    body = client.get("/api/search", params=params).json()
    assert names(body) == ["paris.jpg"] and body["understood"] is None
    body = client.get("/api/search", params={"q": "red"}).json()
    assert len(body["hits"]) == 3 and body["understood"] is None
