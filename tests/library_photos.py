"""A small photo library as people have them, generated for the page's tests: two
folders (a trip and a phone's camera roll), JPEGs whose EXIF says when and where they
were taken (GPS: Lisbon, Porto, Paris), a HEIC from the phone, one photo known only by
its file time, and a pair of near-duplicates (a photo and a smaller copy of it)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from picsearch.samples import load_sample_photo

__all__ = ["PLACES", "DATED", "FILE_TIME_PHOTOS", "write_library", "write_dated"]

LISBON = ((38.0, 43.0, 20.0), "N", (9.0, 8.0, 24.0), "W")
PORTO = ((41.0, 9.0, 0.0), "N", (8.0, 36.0, 40.0), "W")
PARIS = ((48.0, 51.0, 24.0), "N", (2.0, 21.0, 7.0), "E")
PLACES = {"Lisbon": LISBON, "Porto": PORTO, "Paris": PARIS}

#: (folder, file, sample photo, taken, place, camera): newest first.
PHOTOS = [
    ("phone", "IMG_0412.heic", "coffee", "2024:05:19 08:15:00", "Paris", "Apple iPhone 13"),
    ("phone", "IMG_0398.jpg", "flower", "2024:05:02 19:40:00", "Paris", "Apple iPhone 13"),
    ("phone", "IMG_0391.jpg", "astronaut", "2024:04:28 12:00:00", None, "Apple iPhone 13"),
    ("trip", "porto-bridge.jpg", "rocket", "2023:08:14 17:05:00", "Porto", "Canon EOS R6"),
    ("trip", "lisbon-tram.jpg", "motorcycle", "2023:08:10 11:30:00", "Lisbon", "Canon EOS R6"),
    ("trip", "lisbon-cat.jpg", "chelsea", "2023:08:09 09:00:00", "Lisbon", "Canon EOS R6"),
    ("trip", "lisbon-cat-small.jpg", "chelsea", "2023:08:09 09:00:00", "Lisbon", "Canon EOS R6"),
]
#: A file with no EXIF: known by its file time, 2022-01-15.
PLAIN = ("trip", "scan.jpg", "page")
PLAIN_TIME = 1642248000


def _exif(taken: str, place: str | None, camera: str) -> Image.Exif:
    exif = Image.Exif()
    make, _, model = camera.partition(" ")
    exif[0x010F], exif[0x0110] = make, camera
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x9011] = taken, "+01:00"
    if place is not None:
        block = exif.get_ifd(0x8825)
        block[2], block[1], block[4], block[3] = PLACES[place]
    return exif


def write_library(root: Path) -> Path:
    """The photos under ``root`` (two folders); returns ``root``."""
    for folder, name, sample, taken, place, camera in PHOTOS:
        path = root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = load_sample_photo(sample).convert("RGB")
        if name.endswith("-small.jpg"):  # the near-duplicate: the same photo, smaller
            picture = picture.resize((picture.width // 2, picture.height // 2))
        exif = _exif(taken, place, camera)
        if name.endswith(".heic"):
            import pillow_heif

            pillow_heif.from_pillow(picture).save(path, exif=exif.tobytes(), quality=60)
        else:
            picture.save(path, quality=88, exif=exif)
    folder, name, sample = PLAIN
    plain = root / folder / name
    load_sample_photo(sample).convert("RGB").save(plain, quality=88)
    os.utime(plain, (PLAIN_TIME, PLAIN_TIME))
    return root


#: Photos of write_dated known only by their file time.
FILE_TIME_PHOTOS = 1
#: (folder, name, taken, place, camera) of write_dated's photos with EXIF.
DATED = [
    ("trip", "2023-07-lisbon-1.jpg", "2023:07:02 10:00:00", "Lisbon", "Canon EOS R6"),
    ("trip", "2023-07-lisbon-2.jpg", "2023:07:03 10:00:00", "Lisbon", "Canon EOS R6"),
    ("trip", "2023-07-road-1.jpg", "2023:07:05 10:00:00", None, "Canon EOS R6"),
    ("trip", "2023-07-road-2.jpg", "2023:07:06 10:00:00", None, "Canon EOS R6"),
    ("trip", "2023-08-porto-1.jpg", "2023:08:10 10:00:00", "Porto", "Canon EOS R6"),
    ("trip", "2023-08-porto-2.jpg", "2023:08:11 10:00:00", "Porto", "Canon EOS R6"),
    ("trip", "2023-08-lisbon-3.jpg", "2023:08:20 10:00:00", "Lisbon", "Canon EOS R6"),
    ("trip", "2023-08-lisbon-4.jpg", "2023:08:21 10:00:00", "Lisbon", "Canon EOS R6"),
    ("phone", "2024-06-paris-1.jpg", "2024:06:01 10:00:00", "Paris", "Apple iPhone 13"),
    ("phone", "2024-06-paris-2.jpg", "2024:06:01 12:00:00", "Paris", "Apple iPhone 13"),
    ("phone", "2024-06-paris-3.jpg", "2024:06:01 09:00:00", "Paris", "Apple iPhone 13"),
    ("phone", "2024-06-paris-4.jpg", "2024:06:01 08:00:00", "Paris", "Apple iPhone 13"),
]


def _bands(seed: int) -> Image.Image:
    """A picture of seeded colour bands: each seed its own, unlike any other."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bands = rng.integers(0, 256, (16, 1, 3))
    return Image.fromarray(np.repeat(np.repeat(bands, 8, 0), 160, 1).astype("uint8"))


def write_dated(root: Path) -> Path:
    """Small photos with EXIF dates, places and cameras in ``root``/trip and
    ``root``/phone, and trip/scan.jpg known by its file time (2014); returns ``root``."""
    for seed, (folder, name, taken, place, camera) in enumerate(DATED, 100):
        path = root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _bands(seed).save(path, quality=90, exif=_exif(taken, place, camera))
    scan = root / "trip" / "scan.jpg"
    _bands(99).save(scan, quality=90)
    os.utime(scan, (1400000000, 1400000000))
    return root
