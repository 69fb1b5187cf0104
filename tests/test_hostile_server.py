"""The HTTP server against hostile or unlucky input: it never answers 500 for a client's
mistake, never hangs behind slow clients, keeps its connections after an internal error,
and holds bounded memory for thumbnails of large photos.

Real libraries of generated photos with the tiny colour encoder; where the transport is
the point, a real ``picsearch serve`` on loopback.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import solid_photo
from PIL import Image

import picsearch
from picsearch.images import read_file, to_rgb

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from picsearch.server import create_app  # noqa: E402
from picsearch.server.files import CHUNK, NotServable, checked_chunks, open_checked  # noqa: E402
from picsearch.server.security import host_name, is_loopback  # noqa: E402
from picsearch.server.thumbnails import PixelBudget, ThumbnailCache  # noqa: E402

LOCAL = "http://127.0.0.1"
CAFE = b"caf\xe9.png"  # Latin-1 bytes: not a valid UTF-8 file name


def index(db: Path, folder: Path) -> None:
    with picsearch.open(db, model="tiny") as lib:
        lib.index(folder, workers=1)


@pytest.fixture
def library(tmp_path: Path, colour_folder: Path) -> Path:
    db = tmp_path / "lib.db"
    index(db, colour_folder)
    return db


@contextmanager
def client_for(db: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(db, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
        yield client


def assert_error(response: httpx.Response, status: int) -> str:
    """The JSON error body every failure has; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert "Traceback" not in response.text
    return body["error"]["message"]


@contextmanager
def serve(db: Path, *options: str) -> Iterator[str]:
    """A real ``picsearch serve`` on a free loopback port; yields its address."""
    command = [sys.executable, "-m", "picsearch.cli", "serve", "--db", str(db), "--port", "0"]
    env = {**os.environ, "PICSEARCH_TOKEN": ""}
    server = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        address = server.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:"), address
        yield address.rstrip("/")
    finally:
        server.terminate()
        server.wait(timeout=10)


def jpeg_bytes(colour: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


# -- ids and dates out of SQLite's range ---------------------------------------------------

HUGE_IDS = [2**63, 2**64 + 5, 10**30]


@pytest.mark.parametrize("item_id", HUGE_IDS)
@pytest.mark.parametrize("kind", ["", "/image", "/thumbnail", "/similar"])
def test_ids_beyond_64_bits_are_not_found(
    library: Path, tmp_path: Path, item_id: int, kind: str
) -> None:
    with client_for(library, tmp_path) as client:
        assert_error(client.get(f"/api/items/{item_id}{kind}"), 404)
        assert_error(client.get(f"/api/items/{2**63 - 1}{kind}"), 404)  # the largest id: unknown


def test_the_schema_says_which_ids_exist(library: Path, tmp_path: Path) -> None:
    with client_for(library, tmp_path) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/items/{item_id}", "/api/items/{item_id}/thumbnail"):
        (parameter,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "item_id"]
        assert (parameter["schema"]["minimum"], parameter["schema"]["maximum"]) == (1, 2**63 - 1)


@pytest.mark.parametrize(
    "moment", ["nan", "inf", "-inf", "1e20", "-1e300", "9999-12-31T23:59:59", "0001-01-01"]
)
@pytest.mark.parametrize("name", ["after", "before"])
def test_dates_out_of_range_are_422_naming_the_parameter(
    library: Path, tmp_path: Path, moment: str, name: str
) -> None:
    with client_for(library, tmp_path) as client:
        for route in ("/api/search", "/api/items/1/similar"):
            response = client.get(route, params={"q": "red", name: moment})
            assert assert_error(response, 422).startswith(f"{name} is out of range")
        edge = client.get("/api/search", params={"q": "red", name: "2262-01-01"})
        assert edge.status_code == 200, edge.text


# -- file names that are not UTF-8 ------------------------------------------------------------


def test_photos_whose_names_are_not_utf8_are_listed_and_served(
    tmp_path: Path, colour_folder: Path
) -> None:
    cafe = os.fsdecode(os.path.join(os.fsencode(colour_folder), CAFE))
    solid_photo(Path(cafe), "purple", format="PNG")
    folder = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"libr\xe9")))
    folder.mkdir()
    index(folder / "lib.db", colour_folder)  # the library's own path is not UTF-8 either
    with client_for(folder / "lib.db", tmp_path) as client:
        response = client.get("/api/search", params={"q": "purple", "k": 9})
        assert response.status_code == 200, response.text
        hit = response.json()["hits"][0]
        assert hit["name"] == "caf\\xe9.png" and hit["path"].endswith("/caf\\xe9.png")
        thumbnail = client.get(hit["thumbnail"])
        assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"
        assert client.get(hit["image"]).content == Path(cafe).read_bytes()
        assert client.get(f"/api/items/{hit['id']}").json()["name"] == "caf\\xe9.png"
        assert client.get(hit["similar"]).status_code == 200
        # An error naming the library (whose path is not UTF-8) is JSON too.
        assert "libr\\xe9" in assert_error(client.get("/api/items/999/similar"), 404)


# -- an internal error keeps the connection --------------------------------------------------


def local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def test_after_a_500_the_keep_alive_connection_stays_usable(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A regular file where the thumbnail cache folder belongs: every new thumbnail fails.
    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "thumbnails").write_text("not a folder")
    with serve(library) as address, httpx.Client(base_url=address, timeout=10) as client:
        first = client.get("/api/search", params={"q": "red"})
        assert first.status_code == 200
        failed = client.get(first.json()["hits"][0]["thumbnail"])
        assert "internal error" in assert_error(failed, 500)
        assert failed.headers.get("connection") != "close"
        after = client.get("/api/health")
        assert after.status_code == 200
        assert local_port(first) == local_port(failed) == local_port(after)


# -- slow uploads -----------------------------------------------------------------------------


def stalled_upload(address: str, sent: int = 100, declared: int = 100_000) -> socket.socket:
    """A connection that sends the headers and the first ``sent`` bytes of an image
    upload of ``declared`` bytes, then stops."""
    host, port = address.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (
        "POST /api/search/image HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {declared}\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
    )
    sock.sendall(head.encode() + (jpeg_bytes("red") + bytes(sent))[:sent])
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """All the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_stalled_uploads_block_no_search_and_are_answered_408(library: Path) -> None:
    with serve(library, "--body-timeout", "3") as address:
        httpx.get(address + "/api/health", timeout=10)  # the server is up and warm
        started = time.monotonic()
        stalled = [stalled_upload(address) for _ in range(8)]
        time.sleep(0.3)  # all eight are inside the server, waiting for the rest of their body
        upload = {"file": ("q.jpg", jpeg_bytes("blue"), "image/jpeg")}
        search = httpx.post(address + "/api/search/image", files=upload, timeout=1)
        assert search.status_code == 200 and search.json()["hits"]
        assert time.monotonic() - started < 2.5  # before any stalled upload was let go
        for sock in stalled:
            with sock:
                answer = answer_of(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b'"status":408' in answer and b"did not arrive within 3 s" in answer
        assert 2.9 < time.monotonic() - started < 8


def test_the_upload_bytes_held_are_bounded_and_over_them_refused_at_once(library: Path) -> None:
    # At most 4 uploads of the largest size (50 kB + the form's 16 kB) are held at once.
    with serve(library, "--max-upload-mb", "0.05", "--body-timeout", "3") as address:
        stalled = [stalled_upload(address, sent=60_000, declared=65_000) for _ in range(4)]
        time.sleep(0.5)  # 240 kB held: what they sent
        noise = np.random.default_rng(5).integers(0, 256, (170, 170, 3), dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(noise).save(out, "JPEG", quality=95)
        upload = {"file": ("q.jpg", out.getvalue(), "image/jpeg")}
        assert 30_000 < len(out.getvalue()) < 50_000
        refused = httpx.post(address + "/api/search/image", files=upload, timeout=1)
        assert "busy" in assert_error(refused, 503) and refused.headers["retry-after"] == "1"
        small = {"file": ("s.jpg", jpeg_bytes("blue"), "image/jpeg")}  # still fits
        assert httpx.post(address + "/api/search/image", files=small, timeout=1).status_code == 200
        for sock in stalled:  # let go after the body timeout, and their bytes with them
            with sock:
                assert answer_of(sock).startswith(b"HTTP/1.1 408 ")
        accepted = httpx.post(address + "/api/search/image", files=upload, timeout=5)
        assert accepted.status_code == 200, accepted.text


def test_bodies_larger_than_their_route_takes_are_413_before_being_read(
    client_with_library: TestClient,
) -> None:
    huge = b'{"token": "' + b"x" * 2_000_000 + b'"}'
    response = client_with_library.post(
        "/api/session", content=huge, headers={"Content-Type": "application/json"}
    )
    assert "too large" in assert_error(response, 413)
    assert client_with_library.post("/api/session", json={"token": "x"}).status_code == 204


# -- the Host header --------------------------------------------------------------------------

HOSTILE_HOSTS = [
    "[::1]evil.com",
    "[::1]:8000evil.com",
    "[::1].evil.com",
    "[::1]@evil.com",
    "[::1]]",
    "[[::1]]",
    "[::1",
    "::1",
    "[::1]:",
    "[::1]:80:80",
    "[localhost]",
    "localhost:8000@evil.com",
    "localhost:8000/evil.com",
    "localhost evil.com",
    "localhost:80:80",
    "localhost:",
    "localhost:http",
    "localhost:123456",
    "127.0.0.1.evil.com",
    "127.0.0.1:80.evil.com",
    "evil.com#127.0.0.1",
    "evil.com?localhost",
    "127.0.0.1,evil.com",
    "",
    "[::ffff:10.0.0.1]",
    "[fe80::1%25lo]",
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_hostile_host_headers_are_refused(client_with_library: TestClient, host: str) -> None:
    response = client_with_library.get("/api/health", headers={"Host": host})
    assert_error(response, 400)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost", "LocalHost:80", "[::1]", "[::1]:8000"]
)
def test_loopback_host_headers_are_answered(client_with_library: TestClient, host: str) -> None:
    assert client_with_library.get("/api/health", headers={"Host": host}).status_code == 200


def test_a_host_header_is_a_host_and_an_optional_port_only() -> None:
    assert host_name("[::1]:8000") == "::1" and host_name("localhost:80") == "localhost"
    assert host_name("[0:0:0:0:0:0:0:1]") == "::1"
    for host in HOSTILE_HOSTS:
        name = host_name(host)
        assert name is None or not is_loopback(name), host


@pytest.fixture
def client_with_library(library: Path, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(library, tmp_path) as client:
        yield client


# -- the port ---------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["70000", "65536", "-1", "http", "80.5"])
def test_ports_out_of_range_are_refused_with_one_line(library: Path, port: str) -> None:
    # A subprocess: a port that is wrongly accepted would serve (70000 as 4464) forever.
    command = [sys.executable, "-m", "picsearch.cli", "serve", "--db", str(library)]
    done = subprocess.run([*command, "--port", port], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    reason = f"{port!r} is not a port: use 0 to 65535 (0: any free)"
    assert done.stderr.strip().splitlines()[-1] == (
        f"picsearch serve: error: argument --port: {reason}"
    )


# -- thumbnails of large photos -------------------------------------------------------------


def gradient(path: Path, size: tuple[int, int], mode: str = "RGB", **save: object) -> Path:
    """A smooth picture (small on disk, many pixels once decoded)."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    channels = [x + 0 * y, y + 0 * x, (x + y) / 2, 255 * (x > 127) + 0 * y]
    pixels = np.stack(channels[: len(mode)], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path, **save)
    return path


def stored(db: Path) -> dict[str, dict[str, object]]:
    """name -> what ThumbnailCache.get takes for each photo of a library."""
    with picsearch.open(db) as lib:
        hits = lib.search("any", k=50)
    return {
        Path(hit.path).name: {
            "item_id": hit.id,
            "path": hit.path,
            "size": os.path.getsize(hit.path),
            "digest": read_file(hit.path).digest,
        }
        for hit in hits
    }


def in_threads(count: int, work) -> list:
    """``work(i)`` in ``count`` threads started together; their results in order."""
    start, results = threading.Barrier(count), [None] * count

    def run(i: int) -> None:
        start.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_requests_for_one_thumbnail_decode_it_once(tmp_path: Path) -> None:
    gradient(tmp_path / "photos" / "big.png", (3000, 2000))
    index(tmp_path / "lib.db", tmp_path / "photos")
    with client_for(tmp_path / "lib.db", tmp_path) as client:
        (item,) = stored(tmp_path / "lib.db").values()
        url = f"/api/items/{item['item_id']}/thumbnail"
        answers = in_threads(8, lambda _: client.get(url, params={"size": 320}))
        assert [a.status_code for a in answers] == [200] * 8
        assert len({a.content for a in answers}) == 1
        assert client.app.state.thumbnails.made == 1
        assert Image.open(io.BytesIO(answers[0].content)).size == (320, 213)


def test_large_decodes_share_a_pixel_budget(tmp_path: Path) -> None:
    sizes = {"a.png": (1200, 1000), "b.png": (1000, 900), "c.png": (900, 800), "d.png": (800, 800)}
    for name, size in sizes.items():
        gradient(tmp_path / "photos" / name, size)
    index(tmp_path / "lib.db", tmp_path / "photos")
    items = list(stored(tmp_path / "lib.db").values())
    cache = ThumbnailCache(tmp_path / "thumbs", pixel_budget=1_000_000)
    made = in_threads(4, lambda i: cache.get(**items[i], pixels=160))
    assert all(Image.open(io.BytesIO(data)).format == "JPEG" for data in made)
    # Each photo is over half the budget: no two were ever decoded at once.
    assert cache.budget.peak == 1200 * 1000 and cache.made == 4


def test_the_pixel_budget_is_first_come_first_served_and_never_exceeded() -> None:
    budget, inside, most = PixelBudget(10), [0], [0]
    lock = threading.Lock()

    def decode(pixels: int) -> None:
        with budget.hold(pixels):
            with lock:
                inside[0] += pixels
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= pixels

    in_threads(6, lambda i: decode([4, 4, 4, 25, 3, 6][i]))
    assert most[0] == budget.peak == 25  # the one over the budget ran alone
    assert budget.peak == 25 and inside[0] == 0


def test_jpegs_are_decoded_reduced(tmp_path: Path) -> None:
    gradient(tmp_path / "photos" / "big.jpg", (4000, 3000), quality=90)
    index(tmp_path / "lib.db", tmp_path / "photos")
    (item,) = stored(tmp_path / "lib.db").values()
    cache = ThumbnailCache(tmp_path / "thumbs")
    data = cache.get(**item, pixels=320)
    assert Image.open(io.BytesIO(data)).size == (320, 240)
    assert cache.budget.peak == 500 * 375  # decoded at 1/8 scale, not 12 megapixels


def test_transparent_and_palette_photos_reduced_in_bands_look_the_same(tmp_path: Path) -> None:
    rgba = gradient(tmp_path / "photos" / "clear.png", (2600, 1700), "RGBA")
    palette = tmp_path / "photos" / "palette.png"
    Image.open(rgba).convert("RGB").quantize(64).save(palette, transparency=0)
    index(tmp_path / "lib.db", tmp_path / "photos")
    cache = ThumbnailCache(tmp_path / "thumbs")
    for name, item in stored(tmp_path / "lib.db").items():
        made = Image.open(io.BytesIO(cache.get(**item, pixels=160)))
        expected = to_rgb(Image.open(tmp_path / "photos" / name))
        expected.thumbnail((160, 160), Image.Resampling.LANCZOS)
        assert made.size == expected.size == (160, 105)
        difference = np.abs(np.asarray(made, np.int16) - np.asarray(expected, np.int16))
        assert difference.mean() < 4, name


# -- originals are sent in chunks ---------------------------------------------------------


def noise_png(path: Path, size: tuple[int, int]) -> Path:
    """A PNG that does not compress: bytes on disk about the pixels' size."""
    pixels = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, compress_level=0)
    return path


def test_a_large_original_is_sent_whole_in_chunks(tmp_path: Path) -> None:
    photo = noise_png(tmp_path / "photos" / "noise.png", (1200, 1000))
    assert photo.stat().st_size > 3 * CHUNK
    index(tmp_path / "lib.db", tmp_path / "photos")
    with client_for(tmp_path / "lib.db", tmp_path) as client:
        (item,) = stored(tmp_path / "lib.db").values()
        response = client.get(f"/api/items/{item['item_id']}/image")
        assert response.status_code == 200 and response.content == photo.read_bytes()
        assert response.headers["content-length"] == str(photo.stat().st_size)


def test_an_original_written_to_while_sent_is_cut_short(tmp_path: Path) -> None:
    photo = noise_png(tmp_path / "photos" / "noise.png", (1200, 1000))
    item = {"path": str(photo), "size": photo.stat().st_size, "digest": read_file(photo).digest}
    chunks = checked_chunks(open_checked(**item), **item)
    received = [next(chunks)]
    with open(photo, "r+b") as handle:  # changed in place, at the same size
        handle.seek(2 * CHUNK)
        handle.write(b"\0" * 100)
    with pytest.raises(NotServable, match="changed while it was sent"):
        received.extend(chunks)
    assert sum(map(len, received)) < item["size"]  # the end held back: never a whole file
    with pytest.raises(NotServable, match="changed since it was indexed"):
        open_checked(**item)
