"""The browse API over a real library file (real SQLite, the tiny model): the timeline a
page at a time by keyset, its months, folders and places with counts, and moving a
group of near-duplicates into a folder and back from the page's routes."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import sha, striped
from library_photos import FILE_TIME_PHOTOS, write_dated

import picsearch
from picsearch.catalog import Catalog, Row
from picsearch.catalog.browse import Browser
from picsearch.photo_info import PhotoInfo

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from picsearch.library import Hit  # noqa: E402
from picsearch.server import create_app  # noqa: E402
from picsearch.server.paging import ranked_page  # noqa: E402

LOOPBACK = "http://127.0.0.1"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Twelve dated photos in two folders (three places), one known by its file time,
    and a near-duplicate pair in a third folder."""
    photos = write_dated(tmp_path / "photos")
    striped(photos / "copies" / "a.png", seed=7)
    striped(photos / "copies" / "a-copy.png", seed=7, size=(120, 90))
    for copy in (photos / "copies").iterdir():
        os.utime(copy, (1433116800, 1433116800))  # 2015-06-01: older than the dated ones
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        assert lib.index(photos, concepts="fast", workers=1).added == 14 + FILE_TIME_PHOTOS
    return tmp_path / "lib.db"


@pytest.fixture
def client(library: Path, tmp_path: Path):
    app = create_app(library, workers=1, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url=LOOPBACK) as test_client:
        yield test_client


def all_pages(client: TestClient, limit: int, **params: str) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/timeline", params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body["items"])
        cursor = body["next"]
        if cursor is None:
            return pages


def test_the_timeline_pages_by_keyset_newest_first(client: TestClient) -> None:
    whole = client.get("/api/timeline", params={"limit": 200}).json()
    assert whole["next"] is None
    everything = whole["items"]
    assert len(everything) == 14 + FILE_TIME_PHOTOS
    taken = [item["taken"] for item in everything]
    moments = [client.get(f"/api/items/{i['id']}").json()["taken"] for i in everything]
    assert taken == moments
    pages = all_pages(client, 3)
    assert [len(p) for p in pages[:-1]] == [3] * (len(pages) - 1)
    assert [i["id"] for p in pages for i in p] == [i["id"] for i in everything]
    # Newest first by capture time, not by file time or id.
    assert everything[0]["name"] == "2024-06-paris-2.jpg"
    assert everything[-1]["name"] == "scan.jpg"  # its file time, 2015


def test_a_page_holds_at_most_200_and_a_bad_cursor_is_a_clear_4xx(client: TestClient) -> None:
    for bad in ("limit=201", "limit=0", "cursor=yesterday", "cursor=99999999999999999999.1"):
        answer = client.get(f"/api/timeline?{bad}")
        assert answer.status_code == 400 and bad.split("=")[0] in answer.text, answer.text
    out_of_range = client.get("/api/timeline?cursor=9999999999999999999.1")
    assert out_of_range.status_code == 400
    assert "cursor" in out_of_range.json()["error"]["message"]
    city_alone = client.get("/api/timeline?city=Porto")
    assert city_alone.status_code == 400 and "country" in city_alone.text


def test_months_start_the_timeline_at_each_month(client: TestClient) -> None:
    months = client.get("/api/timeline/months").json()["months"]
    assert [m["month"] for m in months][:3] == ["2024-06", "2023-08", "2023-07"]
    assert sum(m["count"] for m in months) == 14 + FILE_TIME_PHOTOS
    august = next(m for m in months if m["month"] == "2023-08")
    first = client.get("/api/timeline", params={"cursor": august["cursor"]}).json()["items"]
    assert first[0]["taken"].startswith("2023-08")
    assert [i["taken"][:7] for i in first[: august["count"]]] == ["2023-08"] * august["count"]


def test_folders_are_a_tree_from_the_indexed_root_with_counts(
    client: TestClient, tmp_path: Path
) -> None:
    roots = client.get("/api/folders").json()
    assert roots["folder"] is None
    assert roots["folders"] == [
        {"path": str(tmp_path / "photos"), "name": "photos", "count": 14 + FILE_TIME_PHOTOS}
    ]
    root = client.get("/api/folders", params={"path": str(tmp_path / "photos")}).json()
    assert root["parent"] is None  # above the root is no folder of the library
    assert {f["name"]: f["count"] for f in root["folders"]} == {
        "copies": 2,
        "phone": 4,
        "trip": 8 + FILE_TIME_PHOTOS,
    }
    trip = client.get("/api/folders", params={"path": str(tmp_path / "photos" / "trip")}).json()
    assert trip["parent"] == str(tmp_path / "photos")
    pages = all_pages(client, 2, folder=str(tmp_path / "photos" / "trip"))
    names = [i["name"] for p in pages for i in p]
    assert len(names) == 8 + FILE_TIME_PHOTOS
    assert all("/trip/" in i["path"] for p in pages for i in p)
    assert client.get("/api/folders", params={"path": "relative/path"}).status_code == 400
    assert client.get("/api/folders", params={"path": str(tmp_path / "nope")}).status_code == 404


def test_places_are_countries_then_cities_with_counts(client: TestClient) -> None:
    countries = client.get("/api/places").json()["places"]
    assert countries == [{"name": "Portugal", "count": 6}, {"name": "France", "count": 4}]
    cities = client.get("/api/places", params={"country": "Portugal"}).json()["places"]
    assert {c["name"] for c in cities} >= {"Porto"} and sum(c["count"] for c in cities) == 6
    porto = all_pages(client, 2, country="Portugal", city="Porto")
    assert {i["name"][:7] for p in porto for i in p} == {"2023-08"}
    assert sum(len(p) for p in all_pages(client, 4, country="France")) == 4


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"people": "false"}, 14 + FILE_TIME_PHOTOS),
        ({"camera": "canon"}, 8),
        ({"place": "Paris"}, 4),
        ({"after": "2023-08-01", "before": "2023-09-01"}, 4),
        ({"folder": "PHOTOS/phone"}, 4),
        ({}, 14 + FILE_TIME_PHOTOS),
    ],
)
def test_every_filter_works_without_a_query(
    client: TestClient, tmp_path: Path, params: dict, count: int
) -> None:
    params = {k: v.replace("PHOTOS", str(tmp_path / "photos")) for k, v in params.items()}
    answer = client.get("/api/search", params={**params, "k": 50})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["hits"]) == count
    assert client.get("/api/search", params={"color": "red"}).status_code == 200


def group_of(client: TestClient) -> dict:
    groups = client.get("/api/duplicates").json()["groups"]
    assert len(groups) == 1
    return groups[0]


def test_duplicates_show_size_date_and_similarity(client: TestClient) -> None:
    group = group_of(client)
    names = [m["name"] for m in group["members"]]
    assert names == ["a.png", "a-copy.png"]  # the larger one is the keeper
    assert group["keeper"] == group["members"][0]["id"]
    assert all(m["taken"] and m["size"] > 0 and m["width"] > 0 for m in group["members"])
    similarity = group["similarity"]
    assert similarity[0][0] == pytest.approx(1.0, abs=1e-3) and similarity[0][1] > 0.9


def test_move_the_copies_then_undo_with_the_journal(
    client: TestClient, library: Path, tmp_path: Path
) -> None:
    group = group_of(client)
    keeper, copy = (m["id"] for m in group["members"])
    copy_path = Path(group["members"][1]["path"])
    before = sha(copy_path)
    target = tmp_path / "moved"
    body = {"keeper": keeper, "move": [copy], "folder": str(target)}
    plan = client.post("/api/duplicates/move", json=body).json()
    assert plan["moved"] is False and plan["log"] is None
    assert copy_path.exists() and not target.exists()  # the confirm step moves nothing
    done = client.post("/api/duplicates/move", json={**body, "confirm": True}).json()
    assert done["moved"] is True and len(done["moves"]) == 1
    moved_to = Path(done["moves"][0]["destination"])
    assert not copy_path.exists() and sha(moved_to) == before
    assert client.get(f"/api/items/{copy}").json()["path"] == str(moved_to)
    with sqlite3.connect(library) as db:  # the same journal as dups --move-to
        assert db.execute("SELECT kind FROM moves").fetchall() == [("moved",)]
    assert client.get("/api/duplicates/moves").json()["logs"] == [done["log"]]
    undone = client.post("/api/duplicates/undo", json={"log": done["log"]}).json()
    assert undone == {"restored": 1, "already": 0, "refused": []}
    assert sha(copy_path) == before and not moved_to.exists()
    assert client.get(f"/api/items/{copy}").json()["path"] == str(copy_path)
    header = json.loads(Path(done["log"]).read_text().splitlines()[0])
    assert header["library"] == str(library)


def test_moves_are_refused_with_a_reason(client: TestClient, tmp_path: Path) -> None:
    group = group_of(client)
    keeper, copy = (m["id"] for m in group["members"])
    others = client.get("/api/timeline?limit=1").json()["items"][0]["id"]
    outside, inside = str(tmp_path / "moved"), str(tmp_path / "photos" / "x")
    cases = [
        ({"keeper": keeper, "move": [others], "folder": outside}, 409, "not a copy"),
        ({"keeper": keeper, "move": [keeper], "folder": outside}, 409, "not a copy"),
        ({"keeper": keeper, "move": [copy], "folder": "moved"}, 400, "absolute"),
        ({"keeper": keeper, "move": [copy], "folder": inside}, 409, "inside"),
        ({"keeper": 999, "move": [copy], "folder": outside}, 404, "no group"),
    ]
    for body, status, words in cases:
        answer = client.post("/api/duplicates/move", json={**body, "confirm": True})
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.json()["error"]["message"]
    plan = client.post("/api/duplicates/move", json={**cases[0][0], "move": [copy, others]})
    assert plan.status_code == 200  # a plan says what would move, and what would not
    assert len(plan.json()["moves"]) == 1 and "not a copy" in plan.json()["skipped"][0]
    foreign = client.post(
        "/api/duplicates/move",
        json={"keeper": keeper, "move": [copy], "folder": outside, "confirm": True},
        headers={"Origin": "http://evil.example"},
    )
    assert foreign.status_code == 403
    unknown = client.post("/api/duplicates/undo", json={"log": str(tmp_path / "x.jsonl")})
    assert unknown.status_code == 404
    assert all(Path(m["path"]).exists() for m in group["members"])


def test_writes_need_the_token_when_the_server_has_one(library: Path, tmp_path: Path) -> None:
    token = "a-long-enough-access-token"
    app = create_app(library, token=token, workers=1, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url="http://192.0.2.1") as remote:
        body = {"keeper": 1, "move": [2], "folder": str(tmp_path / "moved"), "confirm": True}
        assert remote.post("/api/duplicates/move", json=body).status_code == 401
        assert remote.post("/api/duplicates/undo", json={"log": "x"}).status_code == 401
        assert remote.get("/api/timeline").status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert remote.get("/api/timeline", headers=bearer).status_code == 200


def test_the_browse_indexes_are_added_to_an_older_library(library: Path) -> None:
    with sqlite3.connect(library) as db:
        for index in ("photo_info_place", "photo_info_month", "photo_info_item_taken"):
            db.execute(f"DROP INDEX {index}")
    browser = Browser(library)  # as over a read-only library from before them
    paged = browser.page(50, folder=os.fsencode(library.parent / "photos" / "trip"))
    assert len(paged) == 8 + FILE_TIME_PHOTOS
    browser.close()
    Catalog(library, create=False).close()
    with sqlite3.connect(library) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type='index'")}
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT country, count(*) FROM photo_info GROUP BY country"
        ).fetchall()
    assert {"photo_info_place", "photo_info_month", "photo_info_item_taken"} <= names
    assert "photo_info_place" in str(plan)


def test_photos_without_photo_info_are_in_the_timeline_by_file_time(
    client: TestClient, library: Path
) -> None:
    with sqlite3.connect(library) as db:  # as an older library has them
        db.execute("DELETE FROM photo_info WHERE item_id IN (SELECT id FROM items LIMIT 3)")
    pages = all_pages(client, 4)
    assert sum(len(p) for p in pages) == 14 + FILE_TIME_PHOTOS
    ids = [i["id"] for p in pages for i in p]
    assert len(set(ids)) == len(ids)
    months = client.get("/api/timeline/months").json()["months"]
    assert sum(m["count"] for m in months) == 14 + FILE_TIME_PHOTOS


@pytest.mark.parametrize("route", ["/api/search?q=bands", "/api/search?camera=canon"])
def test_search_results_come_a_page_at_a_time(client: TestClient, route: str) -> None:
    whole = client.get(f"{route}&k=50").json()["hits"]
    pages = [client.get(f"{route}&k=3&start={start}").json()["hits"] for start in range(0, 15, 3)]
    paged = [hit for page in pages for hit in page]
    # The same list (photos of equal score may come in either order).
    assert [h["score"] for h in paged] == [h["score"] for h in whole]
    assert sorted(h["id"] for h in paged) == sorted(h["id"] for h in whole)
    assert [h["rank"] for h in paged] == list(range(1, len(whole) + 1))
    item = whole[0]["id"]
    similar = client.get(f"/api/items/{item}/similar?k=50").json()["hits"]
    second = client.get(f"/api/items/{item}/similar?k=4&start=4").json()["hits"]
    assert [h["score"] for h in second] == [h["score"] for h in similar[4:8]]
    assert client.get(f"{route}&start=10001").status_code == 400
    if "q=" not in route:  # filters alone: newest first, each page in that order
        assert [h["id"] for h in paged] == [h["id"] for h in whole]
        taken = [dt.datetime.fromisoformat(h["taken"]) for h in whole]
        assert taken == sorted(taken, reverse=True)


def test_folders_of_every_size_page_newest_first(tmp_path: Path) -> None:
    """A folder of 1,500 photos (sorted once, then bisected), one of 6,000 (80%: the
    time index walked) and one of 3: each pages by keyset in capture-time order."""
    db = tmp_path / "big.db"
    with picsearch.open(db, model="tiny") as lib:
        dims = lib.encoder.dim, lib.encoder.visual_dim
    catalog = Catalog(db, create=False)
    rng = np.random.default_rng(3)
    vector = np.ones(dims[0], np.float32).tobytes()
    visual = np.ones(dims[1], np.float32).tobytes() if dims[1] else None
    sizes = {"/lib/middle": 1500, "/lib/large": 6000, "/lib/small": 3}
    rows, taken = [], {}
    for folder, count in sizes.items():
        for n in range(count):
            item_id = len(rows) + 1
            moment = dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                seconds=int(rng.integers(0, 10**9)) // 10 * 10  # some photos share a time
            )
            taken[item_id] = (folder, moment)
            row = Row(item_id, f"{folder}/{n}.jpg", 1, 0, f"{item_id:032x}", 4, 3, {})
            rows.append((row, vector, visual))
    catalog.write_rows(rows, version=catalog.bump_generation())
    with catalog.transaction():
        for item_id, (_, moment) in taken.items():
            catalog.photos.replace(item_id, PhotoInfo(moment, "exif"))
    catalog.close()
    app = create_app(db, workers=1, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url=LOOPBACK) as client:
        for folder in sizes:
            expected = sorted(
                (i for i, (f, _) in taken.items() if f == folder),
                key=lambda i: (taken[i][1], i),
                reverse=True,
            )
            pages = all_pages(client, 200, folder=folder)
            assert [item["id"] for page in pages for item in page] == expected, folder


def test_a_ranked_list_pages_as_one_list() -> None:
    """Equal scores (exact copies) come in any order from a search and at the cut it
    keeps any of them: pages are still parts of one list; a list whose scores are all
    the same (filters alone) keeps its own order; and few calls are made."""
    scores = [0.9, 0.8, 0.8, 0.8, 0.8, 0.7, 0.6]
    calls: list[int] = []

    def shuffled(n: int) -> list[Hit]:
        calls.append(n)
        order = np.random.default_rng(n).permutation(len(scores))
        ranked = sorted(order, key=lambda i: -scores[i])[:n]  # ties in any order
        return [Hit(rank=r, id=int(i) + 1, path="p", score=scores[i]) for r, i in enumerate(ranked)]

    pages = [ranked_page(shuffled, start=s, k=2) for s in range(0, 8, 2)]
    ids = [hit.id for page in pages for hit in page]
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    assert [hit.rank for page in pages for hit in page] == list(range(1, 8))
    assert len(calls) <= 8 and max(calls) <= 16  # a tie asks for a little more, once or twice
    newest_first = [Hit(rank=r, id=i, path="p", score=1.0) for r, i in enumerate([5, 2, 9], 1)]
    page = ranked_page(lambda n: newest_first[:n], start=1, k=1)
    assert [hit.id for hit in page] == [2]
