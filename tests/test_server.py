"""The HTTP API in-process (FastAPI's TestClient) over real libraries of generated photos,
with the tiny colour encoder; one test per security rule."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import solid_photo
from PIL import Image

import picsearch
from picsearch.cli import main

pytest.importorskip("fastapi")
from fastapi.routing import APIRoute  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from picsearch.server import create_app  # noqa: E402
from picsearch.server.security import check_bind, is_loopback  # noqa: E402

TOKEN = "correct-horse-battery-staple"
LOCAL = "http://127.0.0.1"


def index(db: Path, *folders: Path) -> None:
    with picsearch.open(db, model="tiny") as lib:
        lib.index(list(folders), metadata={str(folders[0] / "red.jpg"): {"album": "summer"}})


@pytest.fixture
def library(tmp_path: Path, colour_folder: Path) -> Path:
    db = tmp_path / "lib.db"
    index(db, colour_folder)
    return db


def client_for(db: Path, tmp_path: Path, **options: object) -> TestClient:
    app = create_app(db, thumbnail_dir=tmp_path / "thumbs", **options)
    return TestClient(app, base_url=LOCAL, raise_server_exceptions=False)


@pytest.fixture
def client(library: Path, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(library, tmp_path) as client:
        yield client


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["name"] for hit in response.json()["hits"]]


def ids_by_name(client: TestClient) -> dict[str, int]:
    hits = client.get("/api/search", params={"q": "any colour", "k": 50}).json()["hits"]
    return {hit["name"]: hit["id"] for hit in hits}


def assert_error(response, status: int) -> str:
    """The JSON error body every failure has; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    message = body["error"]["message"]
    assert message and "Traceback" not in response.text and 'File "' not in response.text
    return message


def jpeg_bytes(colour: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


# -- the API ------------------------------------------------------------------------


def test_text_search_returns_ranked_hits_with_urls(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "something red", "k": 2})
    assert names(response) == ["red.jpg", names(response)[1]]
    body = response.json()
    first = body["hits"][0]
    assert [h["rank"] for h in body["hits"]] == [1, 2] and body["query"]["text"] == "something red"
    assert first["score"] > body["hits"][1]["score"]
    assert (first["width"], first["height"], first["metadata"]["album"]) == (64, 48, "summer")
    assert first["thumbnail"] == f"/api/items/{first['id']}/thumbnail"
    assert client.get(first["thumbnail"]).headers["content-type"] == "image/jpeg"


def test_image_upload_search_with_k_and_folder_filter(
    client: TestClient, colour_folder: Path
) -> None:
    blue = (colour_folder / "sub" / "blue.jpg").read_bytes()
    response = client.post("/api/search/image?k=3", files={"file": ("q.jpg", blue, "image/jpeg")})
    assert names(response)[0] == "blue.jpg" and len(names(response)) == 3
    assert response.json()["hits"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    only_sub = {"folder": str(colour_folder / "sub"), "k": 5}
    assert names(client.get("/api/search", params={"q": "red", **only_sub})) == ["blue.jpg"]


def test_more_like_this_leaves_the_photo_out(client: TestClient) -> None:
    ids = ids_by_name(client)
    similar = client.get(f"/api/items/{ids['red.jpg']}/similar", params={"k": 10})
    assert sorted(names(similar)) == ["blue.jpg", "green.png", "yellow.webp"]
    assert_error(client.get("/api/items/9999/similar"), 404)


def test_item_metadata_thumbnail_cached_once_and_original(
    client: TestClient, colour_folder: Path, tmp_path: Path
) -> None:
    item_id = ids_by_name(client)["green.png"]
    item = client.get(f"/api/items/{item_id}").json()
    assert item["path"] == str(colour_folder / "green.png") and item["size"] > 0
    first = client.get(f"/api/items/{item_id}/thumbnail", params={"size": 160})
    assert first.status_code == 200 and Image.open(io.BytesIO(first.content)).format == "JPEG"
    cached = list((tmp_path / "thumbs").glob(f"{item_id}-*-160.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == first.content
    again = client.get(
        f"/api/items/{item_id}/thumbnail?size=160", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert_error(client.get(f"/api/items/{item_id}/thumbnail", params={"size": 99}), 400)
    original = client.get(f"/api/items/{item_id}/image")
    assert original.headers["content-type"] == "image/png"
    assert original.content == (colour_folder / "green.png").read_bytes()


def test_info_health_and_an_offline_openapi_schema(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert (info["items"], info["model"], info["dims"]["joint"]) == (4, "tiny", 8)
    assert client.get("/api/health").json() == {"status": "ok", "items": 4}
    schema = client.get("/openapi.json")
    paths = schema.json()["paths"]
    assert {"/api/search", "/api/search/image", "/api/items/{item_id}/similar"} <= set(paths)
    assert "multipart/form-data" in str(paths["/api/search/image"])
    assert "cdn" not in schema.text.lower()
    assert_error(client.get("/docs"), 404)  # its page would load scripts from a CDN
    page = client.get("/")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    assert "://" not in page.text and "://" not in client.get("/static/app.js").text


def test_date_filters(client: TestClient, colour_folder: Path) -> None:
    os.utime(colour_folder / "red.jpg", (1_000_000_000, 1_000_000_000))  # 2001; re-index below
    index(Path(client.app.state.pool.library_path), colour_folder)
    old = client.get("/api/search", params={"q": "red", "before": "2010-01-01", "k": 9})
    assert names(old) == ["red.jpg"]
    recent = client.get("/api/search", params={"q": "red", "after": "1500000000", "k": 9})
    assert "red.jpg" not in names(recent) and len(names(recent)) == 3
    assert "not a date" in assert_error(
        client.get("/api/search", params={"q": "red", "after": "last tuesday"}), 400
    )


def test_concept_filters_and_what_each_hit_shows(tmp_path: Path, colour_folder: Path) -> None:
    db = tmp_path / "concepts.db"
    with picsearch.open(db, model="tiny") as lib:
        lib.index(colour_folder, concepts="fast", workers=1)
    with client_for(db, tmp_path) as client:
        blue = client.get("/api/search", params={"q": "a photo", "color": "blue", "k": 9})
        assert names(blue) == ["blue.jpg"]
        hit = blue.json()["hits"][0]
        assert hit["concepts"]["color:blue"] >= 0.5 and hit["text"] == ""
        assert blue.json()["query"]["color"] == "blue"
        item = client.get(f"/api/items/{hit['id']}").json()
        assert item["concepts"] == hit["concepts"]
        assert names(client.get("/api/search", params={"q": "a photo", "bw": "true"})) == []
        everyone = client.get("/api/search", params={"q": "a photo", "people": "false", "k": 9})
        assert len(names(everyone)) == 4
        assert "unknown colour" in assert_error(
            client.get("/api/search", params={"q": "x", "color": "plaid"}), 400
        )


def test_errors_are_json_with_a_status_and_never_a_traceback(library: Path, tmp_path: Path) -> None:
    with client_for(library, tmp_path) as client:
        assert_error(client.get("/no/such/page"), 404)
        assert "k" in assert_error(client.get("/api/search?q=red&k=0"), 400)
        assert_error(client.get("/api/search?text_only=true"), 400)  # words-only, no words
        assert_error(client.delete("/api/search?q=red"), 405)
        with sqlite3.connect(library) as db:  # break the catalog under the running server
            db.execute("DROP TABLE items")
        message = assert_error(client.get("/api/search?q=red"), 503)
        assert "damaged" in message and "picsearch check" in message


def test_duplicates_are_listed_keeper_first(tmp_path: Path, colour_folder: Path) -> None:
    pytest.importorskip("picsearch.dups")
    red = Image.open(colour_folder / "red.jpg")
    red.paste((250, 240, 240), (8, 8, 40, 30))  # a blank picture groups only with exact copies
    red.save(colour_folder / "red.jpg")
    small = red.resize((32, 24))
    small.save(colour_folder / "red-small.jpg", quality=70)
    db = tmp_path / "lib.db"
    index(db, colour_folder)
    with client_for(db, tmp_path) as client:
        assert client.get("/api/info").json()["duplicates"] is True
        groups = client.get("/api/duplicates").json()["groups"]
        assert len(groups) == 1
        members = groups[0]["members"]
        assert [m["name"] for m in members] == ["red.jpg", "red-small.jpg"]  # larger one kept
        assert groups[0]["keeper"] == members[0]["id"] and groups[0]["pairs"][0]["score"] > 0.9
        assert client.get(members[1]["thumbnail"]).status_code == 200
        assert_error(client.get("/api/duplicates", params={"threshold": 2}), 400)


# -- security -------------------------------------------------------------------------


def test_serve_listens_on_loopback_by_default_and_prints_the_address(
    library: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PICSEARCH_TOKEN": ""}
    server = subprocess.Popen(
        [sys.executable, "-m", "picsearch.cli", "serve", "--db", str(library), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        address = server.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:") and address.endswith("/")
        import httpx

        assert httpx.get(address + "api/health", timeout=10).json()["items"] == 4
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_other_addresses_need_a_token(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--db", str(library), "--host", "0.0.0.0", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "refusing to listen on 0.0.0.0 without an access token" in err
    assert len(err.strip().splitlines()) == 1
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.com"):
        assert not is_loopback(host)
        with pytest.raises(picsearch.InvalidInput, match="token"):
            check_bind(host, None)
        with pytest.raises(picsearch.InvalidInput, match="too short"):
            check_bind(host, "short")
        check_bind(host, TOKEN)


def test_the_token_is_checked_on_every_api_and_image_request(library: Path, tmp_path: Path) -> None:
    with client_for(library, tmp_path, token=TOKEN) as client:
        routes = [r for r in client.app.routes if isinstance(r, APIRoute)]
        checked = [r for r in routes if r.path.startswith("/api/") and r.path != "/api/session"]
        assert len(checked) >= 9
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        item_id = client.get("/api/search?q=red", headers=bearer).json()["hits"][0]["id"]
        for route in [*checked, "/openapi.json"]:
            path = getattr(route, "path", route).replace("{item_id}", str(item_id))
            method = sorted(getattr(route, "methods", {"GET"}))[0]
            for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
                refused = client.request(method, path, params={"q": "red"}, headers=headers)
                assert_error(refused, 401)
                assert refused.headers["www-authenticate"] == "Bearer"
            allowed = client.request(method, path, params={"q": "red"}, headers=bearer)
            assert allowed.status_code != 401, path
        assert client.get("/").status_code == 200  # the page holds no data; it asks for the token
        assert_error(client.post("/api/session", json={"token": "wrong"}), 401)
        assert client.post("/api/session", json={"token": TOKEN}).status_code == 204
        assert TOKEN not in client.cookies["picsearch_token"]  # the cookie is derived from it
        assert client.get(f"/api/items/{item_id}/thumbnail").status_code == 200


def test_without_a_token_only_loopback_host_names_are_answered(client: TestClient) -> None:
    """A web page elsewhere cannot read the photos through DNS rebinding."""
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
    assert_error(client.get("/api/health", headers={"Host": "attacker.example:8000"}), 400)


PATH_TRICKS = [
    "/api/items/..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/api/items/%2Fetc%2Fpasswd/image",
    "/api/items//etc/passwd/image",
    "/api/items/1/../../../../etc/passwd",
    "/api/items/1%2F..%2F2/image",
    "/api/items/-1/image",
    "/api/items/0x1/thumbnail",
    "/api/items/1.5/image",
    "/static/..%2F..%2Fapp.py",
    "/static/index.html/../../server/app.py",
    "/etc/passwd",
    "/api/image?path=/etc/passwd",
]


@pytest.mark.parametrize("url", PATH_TRICKS)
def test_path_tricks_are_not_found(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert_error(response, 404)
    assert "root:" not in response.text


def test_only_catalog_files_are_served_by_id(client: TestClient, colour_folder: Path) -> None:
    solid_photo(colour_folder / "later.jpg", "purple")  # in the folder, not in the catalog
    catalog = {p.read_bytes() for p in colour_folder.rglob("*.*") if p.name != "later.jpg"}
    served = []
    for item_id in range(0, 20):
        response = client.get(f"/api/items/{item_id}/image")
        if response.status_code == 200:
            served.append(response.content)
        else:
            assert_error(response, 404)
    assert len(served) == 4 and set(served) == catalog


def test_symlinks_out_of_the_indexed_folders_are_not_found(tmp_path: Path) -> None:
    photos, outside = tmp_path / "photos", tmp_path / "outside"
    solid_photo(photos / "red.jpg", "red")
    solid_photo(outside / "secret.jpg", "blue")
    (photos / "escape.jpg").symlink_to(outside / "secret.jpg")
    (photos / "alias.jpg").symlink_to(photos / "red.jpg")  # stays inside its folder: fine
    db = tmp_path / "lib.db"
    index(db, photos)
    with client_for(db, tmp_path) as client:
        ids = ids_by_name(client)
        assert set(ids) == {"red.jpg", "escape.jpg", "alias.jpg"}
        for kind in ("image", "thumbnail"):
            assert_error(client.get(f"/api/items/{ids['escape.jpg']}/{kind}"), 404)
            assert client.get(f"/api/items/{ids['alias.jpg']}/{kind}").status_code == 200
        # A catalog file swapped for a symlink after indexing is refused too.
        (photos / "red.jpg").unlink()
        (photos / "red.jpg").symlink_to(outside / "secret.jpg")
        assert_error(client.get(f"/api/items/{ids['red.jpg']}/image"), 404)
        # As is one whose bytes changed since indexing, even at the same size.
        (photos / "red.jpg").unlink()
        solid_photo(photos / "red.jpg", "red")
        data = bytearray((photos / "red.jpg").read_bytes())
        data[-3] ^= 0xFF
        (photos / "red.jpg").write_bytes(bytes(data))
        assert_error(client.get(f"/api/items/{ids['red.jpg']}/image"), 404)


def test_uploads_over_the_size_limit_get_413(library: Path, tmp_path: Path) -> None:
    big = jpeg_bytes("red") + os.urandom(60_000)
    with client_for(library, tmp_path, max_upload_bytes=50_000) as client:
        declared = client.post("/api/search/image", files={"file": ("big.jpg", big, "image/jpeg")})
        assert "too large" in assert_error(declared, 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
            yield b"--b\r\nContent-Disposition: form-data; name=file; filename=x.jpg\r\n\r\n"
            for start in range(0, len(big), 8192):
                yield big[start : start + 8192]
            yield b"\r\n--b--\r\n"

        streamed = client.post(
            "/api/search/image",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert_error(streamed, 413)
        small = client.post("/api/search/image", files={"file": ("s.jpg", jpeg_bytes("red"))})
        assert small.status_code == 200


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height pixels, all black, that compresses ~1000:1."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_decompression_bombs_get_400(client: TestClient) -> None:
    bomb = png_bomb(20_000, 20_000)  # 400 megapixels in about 50 kB
    assert len(bomb) < 100_000
    response = client.post("/api/search/image", files={"file": ("bomb.png", bomb, "image/png")})
    assert "20000x20000" in assert_error(response, 400)


@pytest.mark.parametrize(
    "payload",
    [b"just some text, not an image", b"", jpeg_bytes("red")[:200], b"<svg></svg>"],
    ids=["text", "empty", "truncated-jpeg", "svg"],
)
def test_files_that_are_not_images_get_400(client: TestClient, payload: bytes) -> None:
    response = client.post("/api/search/image", files={"file": ("x.jpg", payload, "image/jpeg")})
    assert_error(response, 400)


def test_an_upload_without_a_file_gets_400(client: TestClient) -> None:
    assert_error(client.post("/api/search/image", data={"k": "3"}), 400)
    assert_error(client.post("/api/search/image", content=jpeg_bytes("red")), 400)


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                info = path.stat()
                found[str(path)] = (info.st_size, info.st_mtime_ns)
    return found


def test_nothing_uploaded_is_written_anywhere(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    upload = io.BytesIO()
    Image.fromarray(noise).save(upload, "PNG")  # ~2 MB: above the usual 1 MB spooling size
    assert len(upload.getvalue()) > 1_500_000
    client.get("/api/search?q=warm")
    before = snapshot(tmp_path)
    # Temporary files (even unnamed ones) would now fail: the folder does not exist.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-temporary-files-here"))
    response = client.post("/api/search/image", files={"file": ("n.png", upload.getvalue())})
    assert response.status_code == 200, response.text
    assert snapshot(tmp_path) == before


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        self.wfile.write(jpeg_bytes("red"))

    def log_message(self, *_: object) -> None:
        pass


def test_the_server_fetches_no_urls_for_clients(client: TestClient) -> None:
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{recorder.server_address[1]}/photo.jpg"
    try:
        client.get("/api/search", params={"q": url, "image": url, "url": url})
        client.post("/api/search/image", data={"url": url, "image": url})
        client.post("/api/search/image", files={"file": ("link.txt", url.encode())})
        client.post(f"/api/search/image?url={url}", files={"file": ("r.jpg", jpeg_bytes("red"))})
        assert_error(client.get("/api/search/url", params={"url": url}), 404)
    finally:
        recorder.shutdown()
    assert _Recorder.hits == []


def test_cors_is_off(client: TestClient) -> None:
    origin = {"Origin": "http://elsewhere.example"}
    response = client.get("/api/search?q=red", headers=origin)
    assert response.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h in response.headers)
    preflight = client.options(
        "/api/search/image", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code in (404, 405)
    assert "access-control-allow-origin" not in preflight.headers


# -- a library that changes while the server runs -----------------------------------------


def test_index_changes_show_without_a_restart(
    client: TestClient, library: Path, colour_folder: Path
) -> None:
    red_id = ids_by_name(client)["red.jpg"]
    solid_photo(colour_folder / "purple.jpg", "purple")
    index(library, colour_folder)  # another Library, as `picsearch index` would be
    assert names(client.get("/api/search?q=purple&k=1")) == ["purple.jpg"]
    (colour_folder / "red.jpg").unlink()
    solid_photo(colour_folder / "orange.jpg", "orange")
    command = [sys.executable, "-m", "picsearch.cli", "index", str(colour_folder), "--db"]
    subprocess.run([*command, str(library), "-q"], check=True, capture_output=True)
    assert names(client.get("/api/search?q=orange&k=1")) == ["orange.jpg"]
    assert "red.jpg" not in names(client.get("/api/search?q=red&k=10"))
    assert_error(client.get(f"/api/items/{red_id}"), 404)
    assert client.get("/api/info").json()["items"] == 5


def test_searches_during_an_index_run_see_whole_batches(
    client: TestClient, library: Path, tmp_path: Path
) -> None:
    more = tmp_path / "more"
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    for i in range(48):
        solid_photo(more / f"p{i:03}.png", colours[i % 6], size=(32 + i, 24))

    def write() -> None:  # another Library in another thread, as `picsearch index` would be
        with picsearch.open(library) as other:
            other.index(more, batch_size=8, workers=1)

    writer = threading.Thread(target=write)
    writer.start()
    counts = []
    while writer.is_alive() or len(counts) < 3:
        response = client.get("/api/search", params={"q": "purple", "k": 200})
        hits = response.json()["hits"]
        assert response.status_code == 200 and all(h["width"] >= 32 for h in hits)
        counts.append(len(hits))
    writer.join()
    counts.append(len(client.get("/api/search", params={"q": "purple", "k": 200}).json()["hits"]))
    assert counts == sorted(counts) and counts[-1] == 52
    assert all((c - 4) % 8 == 0 for c in counts)  # never part of a batch
