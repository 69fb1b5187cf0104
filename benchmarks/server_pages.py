"""The page's browse views on a 100,000-photo library: server time per request and the
time to the first screen of thumbnails in a real browser, over loopback.

    python benchmarks/server_pages.py [--items 100000] [--repeats 200] [--no-browser]

The library (built once under benchmarks/data/pages-N/): 120 real JPEGs with EXIF
dates (the newest photos, so the first screens show real thumbnails) indexed with the
tiny model, then synthetic catalog rows with random vectors, capture times over 20
years, 30 places in 8 countries (15% with none) and a folder per month and place.

It runs ``picsearch serve`` in its own process and times, one request at a time from
this process (wall time on the client, so loopback HTTP is included):

- the first timeline screen (``/api/timeline?limit=60``);
- the next page while scrolling (each page's ``next`` cursor, 100 pages on);
- a jump to a month (its cursor, deep in the library) and the month list;
- the folder view (a folder's subfolders with counts, then its first page);
- the place view (countries, a country's cities, a city's first page).

Side by side in the same run, on one SQLite connection: a deep page by keyset (this
API) and the same page by OFFSET, with their ratio. Then, in Chromium (Playwright,
Debian's /usr/bin/chromium), the time from navigation to the last thumbnail of the
first screen (Resource Timing), with the thumbnail cache cold and then warm.
Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

import picsearch
from picsearch.catalog import Catalog, Row
from picsearch.photo_info import PhotoInfo

DATA = Path(__file__).resolve().parent / "data"
REAL = 120
PLACES = [
    (city, country)
    for country, cities in {
        "Portugal": ["Lisbon", "Porto", "Faro", "Coimbra"],
        "France": ["Paris", "Lyon", "Nice", "Bordeaux"],
        "Spain": ["Madrid", "Barcelona", "Seville", "Valencia"],
        "Italy": ["Rome", "Milan", "Naples", "Florence"],
        "Germany": ["Berlin", "Munich", "Hamburg"],
        "Japan": ["Tokyo", "Kyoto", "Osaka"],
        "United States": ["New York City", "Chicago", "Boston", "Seattle"],
        "United Kingdom": ["London", "Edinburgh", "Manchester", "Bristol"],
    }.items()
    for city in cities
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the library ------------------------------------------------------------------------


def real_photos(folder: Path) -> Path:
    """REAL photos with EXIF dates in 2026 (newer than every synthetic row)."""
    rng = np.random.default_rng(1)
    for n in range(REAL):
        path = folder / "2026" / f"IMG_{n:04}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
        picture = Image.fromarray(base).resize((1600, 1200), Image.Resampling.BICUBIC)
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"2026:01:{1 + n % 28:02} 12:{n % 60:02}:00"
        exif.get_ifd(0x8769)[0x9011] = "+00:00"
        picture.save(path, quality=85, exif=exif)
    return folder


def build_library(items: int) -> Path:
    folder = DATA / f"pages-{items}"
    db = folder / "photos.db"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    log(f"indexing {REAL} real photos, then {items - REAL} synthetic rows into {db}")
    with picsearch.open(db, model="tiny") as lib:
        lib.index(real_photos(folder / "photos"), concepts="off")
        dims = lib.info().dims
    catalog = Catalog(db, create=False)
    rng = np.random.default_rng(0)
    start = max(int(i) for i in catalog.ids()) + 1
    version = catalog.bump_generation()
    rows, infos = [], []
    for n in range(items - REAL):
        item_id = start + n
        taken = dt.datetime(2005, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=int(rng.integers(0, 20 * 365 * 86400))
        )
        place = PLACES[int(rng.integers(0, len(PLACES)))] if rng.random() > 0.15 else None
        where = place[0] if place else "home"
        path = f"/photos/synthetic/{taken.year}/{taken.month:02}-{where}/IMG_{item_id}.jpg"
        vectors = [_unit(rng, d) if d else None for d in (dims["joint"], dims["visual"])]
        digest = hashlib.sha256(path.encode()).hexdigest()[:32]
        row = Row(item_id, path, 2_000_000, int(taken.timestamp() * 1e9), digest, 4000, 3000, {})
        rows.append((row, vectors[0], vectors[1]))
        infos.append(
            (
                item_id,
                PhotoInfo(
                    taken,
                    "exif",
                    camera="Canon EOS R6",
                    city=place and place[0],
                    country=place and place[1],
                ),
            )
        )
    catalog.write_rows(rows, version=version)
    with catalog.transaction():
        for item_id, info in infos:
            catalog.photos.replace(item_id, info)
    catalog.close()
    return db


def _unit(rng: np.random.Generator, dim: int) -> bytes:
    vector = rng.normal(size=dim).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tobytes()


# -- the server -------------------------------------------------------------------------------


def start_server(db: Path) -> tuple[subprocess.Popen, str]:
    shutil.rmtree(db.parent / "cache", ignore_errors=True)  # thumbnails made anew: cold
    env = {**os.environ, "PICSEARCH_TOKEN": "", "PICSEARCH_CACHE": str(db.parent / "cache")}
    command = [sys.executable, "-m", "picsearch.cli", "serve", "--db", str(db), "--port", "0"]
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=(db.parent / "server.log").open("w"),
        text=True,
        env=env,
    )
    address = server.stdout.readline().strip()
    if not address.startswith("http://"):
        server.kill()
        raise SystemExit(f"the server did not start (printed {address!r})")
    return server, address


def timed(client: httpx.Client, url: str, params: dict | None = None) -> tuple[float, dict]:
    begin = time.perf_counter()
    answer = client.get(url, params=params)
    took = (time.perf_counter() - begin) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"{url} {params}: {answer.status_code} {answer.text[:200]}")
    return took, answer.json()


def measure_api(address: str, repeats: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with httpx.Client(base_url=address, timeout=30) as client:
        timed(client, "/api/timeline", {"limit": 60})  # the workers' first browse opens
        results["first timeline screen"] = [
            timed(client, "/api/timeline", {"limit": 60})[0] for _ in range(repeats)
        ]
        cursor, scrolled = None, []
        for _ in range(100):
            took, page = timed(
                client, "/api/timeline", {"limit": 60, **({"cursor": cursor} if cursor else {})}
            )
            scrolled.append(took)
            cursor = page["next"]
        results["next page while scrolling"] = scrolled[1:]
        months = timed(client, "/api/timeline/months")[1]["months"]
        results["month list (jump list)"] = [
            timed(client, "/api/timeline/months")[0] for _ in range(repeats // 4)
        ]
        rng = np.random.default_rng(2)
        results["jump to a month (first page)"] = [
            timed(
                client,
                "/api/timeline",
                {"limit": 60, "cursor": months[int(rng.integers(len(months)))]["cursor"]},
            )[0]
            for _ in range(repeats)
        ]
        results.update(folder_view(client, rng, repeats))
        results.update(place_view(client, rng, repeats))
    return results


def folder_view(
    client: httpx.Client, rng: np.random.Generator, repeats: int
) -> dict[str, list[float]]:
    root = timed(client, "/api/folders")[1]["folders"][0]["path"]
    years = timed(client, "/api/folders", {"path": "/photos/synthetic"})[1]["folders"]
    listing, page, big = [], [], []
    for _ in range(repeats):
        year = years[int(rng.integers(len(years)))]["path"]
        months = timed(client, "/api/folders", {"path": year})[1]["folders"]
        month = months[int(rng.integers(len(months)))]["path"]
        took, _ = timed(client, "/api/folders", {"path": month})
        listing.append(took)
        page.append(timed(client, "/api/timeline", {"limit": 60, "folder": month})[0])
        big.append(timed(client, "/api/timeline", {"limit": 60, "folder": year})[0])
    del root
    return {
        "folder view: subfolders and counts": listing,
        "folder view: first page, a month folder (~70 photos)": page,
        "folder view: first page, a year folder (~5,000)": big,
    }


def place_view(
    client: httpx.Client, rng: np.random.Generator, repeats: int
) -> dict[str, list[float]]:
    countries = timed(client, "/api/places")[1]["places"]
    listing, cities_ms, page = [], [], []
    for _ in range(repeats):
        listing.append(timed(client, "/api/places")[0])
        country = countries[int(rng.integers(len(countries)))]["name"]
        took, found = timed(client, "/api/places", {"country": country})
        cities_ms.append(took)
        city = found["places"][int(rng.integers(len(found["places"])))]["name"]
        page.append(
            timed(client, "/api/timeline", {"limit": 60, "country": country, "city": city})[0]
        )
    return {
        "place view: countries with counts": listing,
        "place view: a country's cities": cities_ms,
        "place view: a city's first page": page,
    }


# -- keyset vs OFFSET --------------------------------------------------------------------------


_PAGE_OF = (
    "SELECT i.id, i.path_bytes, p.taken FROM photo_info p CROSS JOIN items i ON i.id = p.item_id"
)
_ORDER = "ORDER BY p.taken_ns DESC, p.item_id DESC"
_KEYSET = f"{_PAGE_OF} WHERE (p.taken_ns, p.item_id) < (?, ?) {_ORDER} LIMIT 60"
_OFFSET = f"{_PAGE_OF} {_ORDER} LIMIT 60 OFFSET ?"


def keyset_vs_offset(db: Path, items: int) -> list[tuple[int, float, float]]:
    """(depth, keyset ms, OFFSET ms) of one page of 60 at each depth, median of 5."""
    connection = sqlite3.connect(db)
    rows = []
    for depth in (1_000, items // 2, items - 100):
        cursor = connection.execute(
            "SELECT taken_ns, item_id FROM photo_info ORDER BY taken_ns DESC, item_id DESC"
            " LIMIT 1 OFFSET ?",
            (depth - 1,),
        ).fetchone()
        by_key = _median_ms(connection, _KEYSET, cursor)
        by_offset = _median_ms(connection, _OFFSET, (depth,))
        rows.append((depth, by_key, by_offset))
    connection.close()
    return rows


def _median_ms(connection: sqlite3.Connection, sql: str, values: tuple) -> float:
    times = []
    for _ in range(5):
        begin = time.perf_counter()
        connection.execute(sql, values).fetchall()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


# -- the browser --------------------------------------------------------------------------------

FIRST_SCREEN = """() => {
  const shown = [...document.querySelectorAll('#results img')].filter(
    (i) => i.getBoundingClientRect().top < innerHeight);
  if (!shown.length || !shown.every((i) => i.complete && i.naturalWidth)) return null;
  const ends = shown.map((i) => performance.getEntriesByName(i.src)[0]).filter(Boolean)
    .map((e) => e.responseEnd);
  return { count: shown.length, ms: Math.max(...ends) };
}"""


def first_screen_ms(address: str, runs: int) -> list[tuple[int, float]]:
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        for _ in range(runs):
            context = chromium.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(address)
            for _ in range(400):
                screen = page.evaluate(FIRST_SCREEN)
                if screen:
                    break
                page.wait_for_timeout(25)
            else:
                raise SystemExit("the first screen of thumbnails never loaded")
            found.append((screen["count"], screen["ms"]))
            context.close()
        chromium.close()
    return found


# -- the report ------------------------------------------------------------------------------


def report(items: int, api: dict[str, list[float]], offsets, screens) -> None:
    print(
        f"\nServer time per request, {items:,} photos, one request at a time over loopback (ms)\n"
    )
    print("| request | n | p50 | p99 |")
    print("|---|---:|---:|---:|")
    for name, times in api.items():
        p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
        print(f"| {name} | {len(times)} | {p50:.1f} | {p99:.1f} |")
    print("\nOne page of 60 at a depth: keyset vs OFFSET, same connection, same run (ms)\n")
    print("| depth | keyset | OFFSET | OFFSET / keyset |")
    print("|---:|---:|---:|---:|")
    for depth, key, off in offsets:
        print(f"| {depth:,} | {key:.2f} | {off:.2f} | {off / key:.0f}x |")
    if screens:
        print(
            "\nFirst screen of thumbnails in Chromium, navigation to the last one received (ms)\n"
        )
        print("| run | thumbnails on screen | ms |")
        print("|---|---:|---:|")
        cold, warm = screens[0], [ms for _, ms in screens[1:]]
        print(f"| cold (thumbnails made), 1 run | {cold[0]} | {cold[1]:.0f} |")
        middle = statistics.median(warm)
        print(f"| warm (cached), median of {len(warm)} | {cold[0]} | {middle:.0f} |")
        print(f"| warm (cached), best / worst | {cold[0]} | {min(warm):.0f} / {max(warm):.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    db = build_library(args.items)
    offsets = keyset_vs_offset(db, args.items)
    server, address = start_server(db)
    try:
        api = measure_api(address, args.repeats)
        screens = [] if args.no_browser else first_screen_ms(address, 8)
    finally:
        server.terminate()
        server.wait(timeout=20)
    report(args.items, api, offsets, screens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
