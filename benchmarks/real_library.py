"""A realistic photo library, measured: formats, metadata, filters and query phrases.

Builds a library from photos that ship in packages (scikit-image, scikit-learn,
matplotlib), each scaled to the same pixel count and written as JPEG, HEIC and
AVIF with a capture date, a GPS position and a camera in its EXIF, plus a DNG
with an embedded JPEG preview (no RAW sample ships in a package: the benchmark
writes one LibRaw opens, as tests/test_formats.py does). HEIC files carry a
320x240 thumbnail, as phones write. Prints, in one run:

1. indexing cost per photo of each format against plain JPEG at the same pixel
   count (interleaved rounds, best of several): the per-photo work that depends on
   the format (read and hash, decode for the default model's 256 pixels, metadata),
   and a whole ``Library.index`` as a user runs it (the default model, concepts
   ``fast``; ``--model tiny --concepts off`` shows the decode's share alone);
2. metadata and place lookup per photo (the place index loaded once, timed apart);
3. filter-only search over 100,000 synthetic rows written into a real catalog,
   p50/p99;
4. the query grammar on the 50 written queries of benchmarks/data/phrases.json:
   date and place phrases found, missed and invented, with ``dateparser`` (when it
   is installed) and without, and ``dateparser`` alone for comparison.

    python benchmarks/real_library.py [--size 2016x1512] [--rounds 3] [--rows 100000]
        [--model default] [--concepts fast]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import picsearch
from picsearch.catalog import Catalog, Row
from picsearch.encoders.effnet import RESIZE_SIZE
from picsearch.images import DEFAULT_MAX_PIXELS, decode, read_file
from picsearch.photo_info import PhotoInfo, read_photo_info
from picsearch.query_phrases import understand

PHRASES = Path(__file__).resolve().parent / "data" / "phrases.json"
#: Where the photos were taken: (name, latitude, longitude).
PLACES = [
    ("Lisbon", 38.7223, -9.1393),
    ("Paris", 48.8566, 2.3522),
    ("New York", 40.7128, -74.0060),
    ("Sydney", -33.8688, 151.2093),
    ("San Francisco", 37.7749, -122.4194),
    ("Tokyo", 35.6762, 139.6503),
    ("São Paulo", -23.5505, -46.6333),
    ("Reykjavík", 64.1466, -21.9426),
]
CAMERAS = [("Apple", "iPhone 13"), ("Canon", "Canon EOS R6"), ("SONY", "ILCE-7M3")]
FORMATS = ("jpeg", "heic", "avif", "dng")


# -- the photos ------------------------------------------------------------------------


def package_photos() -> list[Image.Image]:
    """The colour photos that ship in scikit-image, scikit-learn and matplotlib."""
    import matplotlib
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    photos += [data.stereo_motorcycle()[0], data.hubble_deep_field()]
    photos += list(load_sample_images().images)
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    images = [Image.fromarray(np.asarray(p)).convert("RGB") for p in photos]
    return images + [Image.open(hopper).convert("RGB")]


def gps_ifd(latitude: float, longitude: float) -> dict[int, Any]:
    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        degrees, minutes = int(value), int(value * 60 % 60)
        return (degrees, minutes, round(value * 3600 % 60, 2))

    return {
        1: "N" if latitude >= 0 else "S",
        2: dms(latitude),
        3: "E" if longitude >= 0 else "W",
        4: dms(longitude),
    }


def exif_for(number: int) -> Image.Exif:
    """Photo ``number``'s EXIF: a capture time with its offset, a camera and a place."""
    exif = Image.Exif()
    make, model = CAMERAS[number % len(CAMERAS)]
    exif[0x010F], exif[0x0110] = make, model
    taken = dt.datetime(2015, 1, 1, 12) + dt.timedelta(days=97 * number)
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x9011] = taken.strftime("%Y:%m:%d %H:%M:%S"), "+01:00"
    _, latitude, longitude = PLACES[number % len(PLACES)]
    exif.get_ifd(0x8825).update(gps_ifd(latitude, longitude))
    return exif


def dng_bytes(image: Image.Image, exif: Image.Exif) -> bytes:
    """A DNG as cameras write one: a full-size JPEG preview first, then RGGB sensor data
    mosaicked from the photo; make, model and capture time in its tags."""
    import tifffile
    import tifffile._imagecodecs as codecs

    rgb = np.asarray(image)
    height, width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    sensor = np.empty((height, width), np.uint16)
    wide = rgb.astype(np.uint16) * (65535 // 255)
    sensor[0::2, 0::2] = wide[0:height:2, 0:width:2, 0]
    sensor[0::2, 1::2] = wide[0:height:2, 1:width:2, 1]
    sensor[1::2, 0::2] = wide[1:height:2, 0:width:2, 1]
    sensor[1::2, 1::2] = wide[1:height:2, 1:width:2, 2]
    sub = exif.get_ifd(0x8769)
    dng_tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50708, "s", 0, f"{exif[0x010F]} {exif[0x0110]}", True),  # UniqueCameraModel
        (271, "s", 0, str(exif[0x010F]), True),
        (272, "s", 0, str(exif[0x0110]), True),
        (306, "s", 0, str(sub[0x9003]), True),  # DateTime
        (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
    ]
    sensor_tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50717, "I", 1, 65535, True),  # WhiteLevel
    ]
    preview = io.BytesIO()
    image.save(preview, "JPEG", quality=85)
    # tifffile asks for a JPEG encoder (imagecodecs) even for a strip given already
    # encoded: the preview's bytes are the strip, so none is needed.
    codecs.jpeg_encode = lambda data, *args, **kwargs: data
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        tiff.write(
            iter([preview.getvalue()]),
            shape=rgb.shape,
            dtype=np.uint8,
            photometric="ycbcr",
            compression="jpeg",
            subsampling=(2, 2),
            rowsperstrip=rgb.shape[0],
            subfiletype=1,
            subifds=1,
            metadata=None,
            extratags=dng_tags,
        )
        tiff.write(sensor, photometric=32803, extratags=sensor_tags, metadata=None)
    return buffer.getvalue()


def write_library(folder: Path, size: tuple[int, int]) -> dict[str, list[Path]]:
    """Each package photo at ``size`` in every format, one folder per format."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    written: dict[str, list[Path]] = {fmt: [] for fmt in FORMATS}
    for number, photo in enumerate(package_photos()):
        image = photo.resize(size, Image.Resampling.LANCZOS)
        exif = exif_for(number)
        for fmt in FORMATS:
            path = folder / fmt / f"photo{number:02d}.{fmt if fmt != 'jpeg' else 'jpg'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "dng":
                path.write_bytes(dng_bytes(image, exif))
            elif fmt == "jpeg":
                image.save(path, "JPEG", quality=90, exif=exif)
            elif fmt == "heic":  # phones embed a small thumbnail, as here
                image.save(path, "HEIF", quality=80, exif=exif, thumbnails=[320])
            else:
                image.save(path, "AVIF", quality=80, exif=exif)
            written[fmt].append(path)
    return written


# -- 1. indexing -----------------------------------------------------------------------


def best_of_interleaved(jobs: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Each job's best time over ``rounds`` rounds, the jobs taking turns in each."""
    best = dict.fromkeys(jobs, float("inf"))
    for job in jobs.values():  # warm: imports, openers registered, the page cache
        job()
    for _ in range(rounds):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def per_photo_work(paths: list[Path]) -> Callable[[], None]:
    """What indexing does to each photo that depends on its format: read and hash the
    file, decode it at the default model's size, read its metadata."""

    def job() -> None:
        for path in paths:
            image_file = read_file(path)
            decode(image_file.data, short_side=RESIZE_SIZE, max_pixels=DEFAULT_MAX_PIXELS)
            read_photo_info(image_file.data, 0)

    return job


def whole_index(folder: Path, scratch: Path, model: str, concepts: str) -> Callable[[], None]:
    """A fresh library indexing ``folder`` with ``model`` at the ``concepts`` level."""

    def job() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        with picsearch.open(scratch / "lib.db", model=model) as lib:
            summary = lib.index([folder], concepts=concepts, workers=1)
        assert not summary.skipped, summary.skipped

    return job


def measure_indexing(
    written: dict[str, list[Path]], work: Path, rounds: int, model: str, concepts: str
) -> None:
    count = len(written["jpeg"])
    width, height = Image.open(written["jpeg"][0]).size
    print(f"\n## 1. Indexing, {count} photos of {width}x{height} per format, best of {rounds}")
    work_jobs = {fmt: per_photo_work(paths) for fmt, paths in written.items()}
    index_jobs = {
        fmt: whole_index(paths[0].parent, work / f"index-{fmt}", model, concepts)
        for fmt, paths in written.items()
    }
    decoded = best_of_interleaved(work_jobs, rounds)
    indexed = best_of_interleaved(index_jobs, rounds)
    targets = {"jpeg": "", "heic": "<= 1.5", "avif": "<= 1.5", "dng": "<= 2 (preview)"}
    print(
        f"read+decode at {RESIZE_SIZE}px+metadata and whole index"
        f" (model {model}, concepts {concepts}, workers=1)"
    )
    print(
        "| format | read+decode ms/photo | x JPEG | index ms/photo | photos/s | x JPEG | target |"
    )
    print("|---|---|---|---|---|---|---|")
    for fmt in FORMATS:
        each, whole = decoded[fmt] / count, indexed[fmt] / count
        ratio, whole_ratio = decoded[fmt] / decoded["jpeg"], indexed[fmt] / indexed["jpeg"]
        print(
            f"| {fmt} | {each * 1000:.1f} | {ratio:.2f} | {whole * 1000:.1f} | {1 / whole:.1f}"
            f" | {whole_ratio:.2f} | {targets[fmt]} |"
        )


# -- 2. metadata and places ------------------------------------------------------------


def measure_metadata(written: dict[str, list[Path]], rounds: int) -> None:
    print("\n## 2. Metadata and place lookup per photo (target < 2 ms)")
    start = time.perf_counter()
    first = read_photo_info(written["jpeg"][0].read_bytes(), 0)
    print(f"first photo, place index loaded once: {(time.perf_counter() - start) * 1000:.0f} ms")
    assert first.city is not None or first.region is not None, first
    for fmt in ("jpeg", "heic", "avif"):
        blobs = [path.read_bytes() for path in written[fmt]]
        best = float("inf")
        for _ in range(rounds * 10):
            start = time.perf_counter()
            infos = [read_photo_info(blob, 0) for blob in blobs]
            best = min(best, time.perf_counter() - start)
        found = sum(info.country is not None and info.taken_source == "exif" for info in infos)
        print(
            f"{fmt}: {best / len(blobs) * 1000:.3f} ms/photo; time and place read: "
            f"{found}/{len(blobs)}"
        )


# -- 3. filter-only search -------------------------------------------------------------


def synthetic_catalog(path: Path, rows: int, dim: int = 384) -> None:
    """``rows`` photos with 384-d vectors (the default model's size) in a real catalog,
    each taken at a random moment of 2010-2026 in one of the places with a camera."""
    rng = random.Random(0)
    catalog = Catalog(path, create=True)
    catalog.bind_model("default", "synthetic-384", dim, None)
    vector = np.zeros(dim, np.float32).tobytes()
    start_s = dt.datetime(2010, 1, 1, tzinfo=dt.UTC).timestamp()
    for first in range(1, rows + 1, 10_000):
        batch = range(first, min(first + 10_000, rows + 1))
        whole = [
            (Row(i, f"/photos/{i}.jpg", 1, i * 10**9, f"{i:064x}", 4032, 3024, {}), vector, None)
            for i in batch
        ]
        catalog.write_rows(whole, version=catalog.bump_generation())
        with catalog.transaction():
            for i in batch:
                name, latitude, longitude = PLACES[rng.randrange(len(PLACES))]
                taken = dt.datetime.fromtimestamp(
                    start_s + rng.random() * 16 * 365 * 86400, dt.timezone(dt.timedelta(hours=1))
                )
                make, model = CAMERAS[rng.randrange(len(CAMERAS))]
                info = PhotoInfo(
                    taken,
                    "exif",
                    f"{make} {model}",
                    None,
                    latitude,
                    longitude,
                    (),
                    name,
                    name,
                    "Country",
                )
                catalog.photos.replace(i, info)
    catalog.close()


def measure_filters(work: Path, rows: int) -> None:
    print(f"\n## 3. Filter-only search over {rows:,} catalog rows (target p99 < 50 ms)")
    path = work / "synthetic.db"
    start = time.perf_counter()
    synthetic_catalog(path, rows)
    print(f"written in {time.perf_counter() - start:.0f} s")
    searches: list[dict[str, Any]] = [
        {"place": "Lisbon"},
        {"camera": "canon"},
        {"after": "2019-06-01", "before": "2019-09-01"},
        {"place": "sao paulo", "after": "2020-01-01", "before": "2021-01-01"},
        {"place": "Tokyo", "camera": "iphone", "after": "2024-01-01"},
    ]
    with picsearch.open(path, create=False) as lib:
        for filters in searches:
            times = []
            for _ in range(60):
                start = time.perf_counter()
                hits = lib.search(k=24, **filters)
                times.append(time.perf_counter() - start)
            times_ms = np.array(times[10:]) * 1000  # the first ones warm SQLite's cache
            print(
                f"{filters}: {len(hits)} hits, p50 {np.percentile(times_ms, 50):.1f} ms,"
                f" p99 {np.percentile(times_ms, 99):.1f} ms"
            )


# -- 4. query phrases ------------------------------------------------------------------


def read_phrases() -> tuple[dt.date, list[dict[str, Any]]]:
    data = json.loads(PHRASES.read_text())
    return dt.date.fromisoformat(data["today"]), data["queries"]


def grade(expected: dict[str, Any], after: Any, before: Any, place: Any) -> dict[str, int]:
    """Date and place phrases: found (as written), missed, invented (a date or place
    where the query has none, or a wrong one)."""
    counts = dict.fromkeys(("dates", "dates found", "places", "places found", "invented"), 0)
    span = (after.isoformat() if after else None, before.isoformat() if before else None)
    if expected["after"] is not None:
        counts["dates"] += 1
        counts["dates found"] += span == (expected["after"], expected["before"])
    if span[0] is not None and span != (expected["after"], expected["before"]):
        counts["invented"] += 1
    if expected["place"] is not None:
        counts["places"] += 1
        counts["places found"] += place == expected["place"]
    if place is not None and place != expected["place"]:
        counts["invented"] += 1
    return counts


def dateparser_alone(strict: bool, today: dt.date) -> Callable[[str], tuple[Any, Any]]:
    """dateparser's ``search_dates`` as a reader of dates: the first date it finds, as
    that day."""
    from dateparser.search import search_dates

    settings: dict[str, Any] = {"RELATIVE_BASE": dt.datetime.combine(today, dt.time())}
    if strict:
        settings.update(STRICT_PARSING=True, REQUIRE_PARTS=["day", "month", "year"])

    def read(query: str) -> tuple[Any, Any]:
        found = search_dates(query, languages=["en"], settings=settings)
        if not found:
            return None, None
        day = found[0][1].date()
        return day, day + dt.timedelta(days=1)

    return read


def measure_phrases(places: list[str]) -> None:
    today, queries = read_phrases()
    print(f"\n## 4. Query phrases: {len(queries)} written queries (today = {today})")
    print("target: every date and place phrase found, nothing invented")
    readers: dict[str, Callable[[str], tuple[Any, Any, Any, Any]]] = {}

    def grammar(query: str) -> tuple[Any, Any, Any, Any]:
        understood = understand(query, places=places, today=today)
        return understood.after, understood.before, understood.place, understood.text

    try:
        import dateparser  # noqa: F401
    except ImportError:
        print("(dateparser is not installed: the grammar alone)")
    else:
        readers["grammar + dateparser (whole days)"] = grammar
        for strict in (False, True):
            read = dateparser_alone(strict, today)
            name = "dateparser alone" + (", strict (day, month, year)" if strict else "")
            readers[name] = lambda q, read=read: (*read(q), None, None)

    def without_dateparser(query: str) -> tuple[Any, Any, Any, Any]:
        blocked = sys.modules.get("dateparser.search")
        sys.modules["dateparser.search"] = None  # type: ignore[assignment]
        try:
            return grammar(query)
        finally:
            sys.modules.pop("dateparser.search")
            if blocked is not None:
                sys.modules["dateparser.search"] = blocked

    readers["grammar alone"] = without_dateparser
    print("| reader | queries | dates found | places found | invented | words exact |")
    print("|---|---|---|---|---|---|")
    for name, reader in readers.items():
        for subset in ("written", "held-out", "all"):
            chosen = [q for q in queries if subset in ("all", q["set"])]
            totals: dict[str, int] = {}
            words = 0
            misses = []
            for expected in chosen:
                after, before, place, text = reader(expected["query"])
                counts = grade(expected, after, before, place)
                for key, value in counts.items():
                    totals[key] = totals.get(key, 0) + value
                words += text == expected["text"]
                if (
                    counts["invented"]
                    or counts["dates found"] < counts["dates"]
                    or (counts["places found"] < counts["places"])
                ):
                    misses.append(expected["query"])
            shown = f"{words}/{len(chosen)}" if name.startswith("grammar") else "-"
            print(
                f"| {name} | {subset} ({len(chosen)}) | {totals['dates found']}/{totals['dates']}"
                f" | {totals['places found']}/{totals['places']} | {totals['invented']}"
                f" | {shown} |"
            )
            if subset == "all" and name.startswith("grammar"):
                print(f"|  missed or invented: {misses} ||||||")
    start = time.perf_counter()
    for expected in queries:
        understand(expected["query"], places=places, today=today)
    each = (time.perf_counter() - start) / len(queries) * 1000
    print(f"understand(): {each:.2f} ms per query (with the readers above warm)")


# -- the run ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2016x1512", help="every photo's pixel size, WxH")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each timing")
    parser.add_argument(
        "--model", default="default", help="the model indexing uses (tiny: the decode share)"
    )
    parser.add_argument("--concepts", default="fast", help="the concept level indexing runs")
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic catalog rows")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    print(f"# Real photo library benchmark ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="picsearch-real-") as scratch:
        work = Path(scratch)
        start = time.perf_counter()
        written = write_library(work / "photos", (width, height))
        print(
            f"wrote {sum(map(len, written.values()))} files in {time.perf_counter() - start:.0f} s"
        )
        measure_indexing(written, work, args.rounds, args.model, args.concepts)
        measure_metadata(written, args.rounds)
        measure_filters(work, args.rows)
        with picsearch.open(work / "index-jpeg" / "lib.db", create=False) as lib:
            places = lib.place_names()
        print(f"\nthe library's place names: {places}")
        measure_phrases(places)


if __name__ == "__main__":
    main()
