"""The concept benchmark: people, text, colour and object queries, with and without the
concept bank, the captioned set, and the indexing cost of each ``--concepts`` level.

    python benchmarks/concepts.py [all | quality speed ocr] [--rounds 2] [--verbose]

``quality``: a concept set built once under ``benchmarks/data/concepts/`` from photos
that ship in packages (the sample photos, scikit-image's ``text``, PyWavelets'
``ascent``) and edits of them with a known answer: greyscale copies, colour tints,
night-darkened copies, face crops, collages of people, text painted onto photos and
generated documents. Each query has several relevant photos. It prints mAP per query
group for the plain default (``--concepts off``), ``fast``, ``full`` and ``full``
without the full-text fusion, then variants computed from one unblended ``full``
index: blend weights, and the phrases kept as extra vectors scored by the best match;
then recall@1 on the captioned sample set (``benchmarks/quality.py``) for the same.
Both are also reported on the tuning and the held-out half of ``benchmarks/quality.py``
(the concept queries with the new held-out ones, the captions split by photo).
``speed``: indexing images/s per level, fresh library each, medians of ``--rounds``.
``ocr``: word recall and ms per photo of OCR against decode size and detector limit,
on photos with words painted at several sizes. Tables to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps
from quality import (  # benchmarks/quality.py, beside this script
    HALVES,
    all_concept_queries,
    captions,
    print_table,
    rank_captions,
)

import picsearch
from picsearch.concepts import bank as bank_module
from picsearch.concepts.bank import blend
from picsearch.concepts.fusion import TEXT_WEIGHT, fuse, query_words
from picsearch.samples import load_sample_photo, write_sample_photos

DATA = Path(__file__).resolve().parent / "data"
LEVELS = ("off", "fast", "full")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- the concept set


def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def paint(image: Image.Image, lines: list[str], size: int, fill, box=None) -> Image.Image:
    """Text painted onto a copy of a photo, on an optional filled box."""
    image = image.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    x, y = image.width // 12, image.height // 8
    if box is not None:
        height = int(len(lines) * size * 1.3) + size
        width = max(int(draw.textlength(t, font=font(size))) for t in lines) + size
        draw.rectangle((x - size // 2, y - size // 2, x + width, y + height), fill=box)
    for line in lines:
        draw.text((x, y), line, fill=fill, font=font(size))
        y += int(size * 1.3)
    return image


def document(lines: list[str], size=(600, 800), text_size: int = 26) -> Image.Image:
    page = Image.new("RGB", size, (246, 244, 238))
    draw = ImageDraw.Draw(page)
    y = 40
    for line in lines:
        draw.text((40, y), line, fill=(20, 20, 20), font=font(text_size))
        y += int(text_size * 1.5)
    return page


def tint(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    return Image.blend(image.convert("RGB"), Image.new("RGB", image.size, colour), 0.45)


def night(image: Image.Image) -> Image.Image:
    dark = np.asarray(image.convert("RGB"), dtype=np.float32) * np.array([0.18, 0.2, 0.3])
    return Image.fromarray(dark.clip(0, 255).astype(np.uint8))


def row(images: list[Image.Image], height: int = 300) -> Image.Image:
    scaled = [im.convert("RGB").resize((im.width * height // im.height, height)) for im in images]
    out = Image.new("RGB", (sum(im.width for im in scaled), height), (128, 128, 128))
    x = 0
    for im in scaled:
        out.paste(im, (x, 0))
        x += im.width
    return out


def lfw_faces() -> np.ndarray:
    import skimage.data

    return skimage.data.lfw_subset()[:100]  # the first 100 are faces


def lfw_face(index: int) -> Image.Image:
    face = (lfw_faces()[index] * 255).astype(np.uint8)
    return Image.fromarray(face).resize((200, 200), Image.Resampling.BICUBIC).convert("RGB")


def extra_photos() -> dict[str, Callable[[], Image.Image]]:
    """Photos beyond the samples, and edits of them: name → how to make it."""
    photo = load_sample_photo
    receipt = ["RECEIPT", "Hardware Store", "2 x hammer   19.80", "1 x nails     4.20"]
    photos: dict[str, Callable[[], Image.Image]] = {
        "text": lambda: Image.fromarray(__import__("skimage.data").data.text()),
        "grey_chelsea": lambda: ImageOps.grayscale(photo("chelsea")),
        "grey_coffee": lambda: ImageOps.grayscale(photo("coffee")),
        "grey_china": lambda: ImageOps.grayscale(photo("china")),
        "grey_flower": lambda: ImageOps.grayscale(photo("flower")),
        "grey_rocket": lambda: ImageOps.grayscale(photo("rocket")),
        "grey_astronaut": lambda: ImageOps.grayscale(photo("astronaut")),
        "red_china": lambda: tint(photo("china"), (230, 20, 20)),
        "red_motorcycle": lambda: tint(photo("motorcycle"), (230, 20, 20)),
        "red_flower": lambda: tint(photo("flower"), (230, 20, 20)),
        "blue_chelsea": lambda: tint(photo("chelsea"), (20, 60, 230)),
        "blue_coffee": lambda: tint(photo("coffee"), (20, 60, 230)),
        "blue_clock": lambda: tint(photo("clock"), (20, 60, 230)),
        "night_china": lambda: night(photo("china")),
        "night_rocket": lambda: night(photo("rocket")),
        "night_motorcycle": lambda: night(photo("motorcycle")),
        "crop_astronaut": lambda: photo("astronaut").crop((110, 0, 390, 280)),
        "crop_grace_hopper": lambda: photo("grace_hopper").crop((110, 30, 410, 380)),
        "flip_camera": lambda: ImageOps.mirror(photo("camera")),
        "lfw_face_a": lambda: lfw_face(3),
        "lfw_face_b": lambda: lfw_face(17),
        "group_portraits": lambda: row(
            [
                photo("astronaut").crop((110, 0, 390, 280)),
                photo("grace_hopper").crop((110, 30, 410, 380)),
                photo("camera").crop((150, 20, 400, 300)),
            ]
        ),
        "group_faces": lambda: row([lfw_face(i) for i in (5, 8, 11, 23)], 200),
        "group_faces_b": lambda: row([lfw_face(i) for i in (31, 40, 52, 60, 71)], 200),
        "stop_china": lambda: paint(photo("china"), ["STOP"], 90, (255, 255, 255), (200, 0, 0)),
        "stop_grass": lambda: paint(photo("grass"), ["STOP"], 110, (0, 0, 0), (255, 255, 255)),
        "sale_coffee": lambda: paint(photo("coffee"), ["SALE", "50% OFF"], 70, (255, 255, 0)),
        "invoice_page": lambda: document(
            ["INVOICE 2023", "Hardware Store", "Invoice no. 1742", "Total due 61.50"]
        ),
        "invoice_rocket": lambda: paint(photo("rocket"), ["INVOICE 2023"], 44, (0, 0, 0), "white"),
        "receipt_page": lambda: document(receipt, size=(420, 620)),
        "weather_page": lambda: document(
            ["WEATHER", "Rain forecast for Sunday", "Wind from the west", "Cool evening"]
        ),
        "tools_brick": lambda: paint(photo("brick"), ["NAILS", "HAMMERS"], 64, "black", "white"),
        "letter_page": lambda: document(
            [
                "Dear neighbours,",
                "the garden party moves to",
                "Sunday afternoon because of",
                "the rain forecast. Bring",
                "a chair and something to",
                "share. See you there!",
            ]
        ),
    }
    try:
        import pywt.data

        photos["ascent"] = lambda: Image.fromarray(pywt.data.ascent().astype(np.uint8))
    except ImportError:
        log("PyWavelets is not installed: the concept set goes without 'ascent'")
    return photos


PEOPLE = ["astronaut", "camera", "grace_hopper", "crop_astronaut", "crop_grace_hopper"]
PEOPLE += ["flip_camera", "grey_astronaut", "lfw_face_a", "lfw_face_b", "ascent"]
GROUPS = ["group_portraits", "group_faces", "group_faces_b"]
FACES = ["astronaut", "grace_hopper", "crop_astronaut", "crop_grace_hopper", "grey_astronaut"]
FACES += ["lfw_face_a", "lfw_face_b"]
#: Query → (group, the photos that answer it). "bw" is filled in from the pixels.
QUERIES: dict[str, tuple[str, list[str]]] = {
    "a photo of a person": ("people", PEOPLE + GROUPS),
    "a portrait of a face": ("people", FACES),
    "a group of people": ("people", GROUPS),
    "a sign that says stop": ("text", ["stop_china", "stop_grass"]),
    "invoice 2023": ("text", ["invoice_page", "invoice_rocket"]),
    "the receipt from the hardware store": ("text", ["receipt_page", "invoice_page"]),
    "a page of printed text": (
        "text",
        ["page", "invoice_page", "receipt_page", "letter_page", "weather_page"],
    ),
    "rain forecast": ("text", ["letter_page", "weather_page"]),
    "hammer and nails": ("text", ["receipt_page", "tools_brick"]),
    "a photo with text on it": (
        "text",
        ["stop_china", "stop_grass", "sale_coffee", "invoice_rocket", "tools_brick", "text"],
    ),
    "a black and white photo": ("colour", []),
    "a red photo": ("colour", ["retina", "red_china", "red_motorcycle", "red_flower"]),
    "a blue photo": ("colour", ["rocket", "blue_chelsea", "blue_coffee", "blue_clock"]),
    "a dark photo taken at night": (
        "colour",
        ["hubble_deep_field", "night_china", "night_rocket", "night_motorcycle"],
    ),
    "a motorcycle": ("objects", ["motorcycle", "red_motorcycle", "night_motorcycle"]),
    "a cup of coffee": ("objects", ["coffee", "grey_coffee", "blue_coffee", "sale_coffee"]),
    "a cat": ("objects", ["chelsea", "grey_chelsea", "blue_chelsea"]),
}


def concept_set() -> tuple[Path, dict[str, tuple[str, set[str]]]]:
    """The concept photos (written once) and each query's group and relevant names."""
    folder = DATA / "concepts"
    write_sample_photos(folder)
    for name, make in extra_photos().items():
        path = folder / f"{name}.jpg"
        if not path.exists():
            make().convert("RGB").save(path, quality=92)
    names = {p.stem for p in folder.glob("*.jpg")}
    queries = {q: (group, set(relevant) & names) for q, (group, relevant) in QUERIES.items()}
    queries["a black and white photo"] = ("colour", grey_photos(folder))
    return folder, queries


def grey_photos(folder: Path) -> set[str]:
    """The names of the black and white photos of a folder, read from their pixels."""
    return {p.stem for p in folder.glob("*.jpg") if _is_grey(p)}


def _is_grey(path: Path) -> bool:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    return int(np.abs(pixels - pixels.mean(axis=-1, keepdims=True)).max()) <= 6


# ----------------------------------------------------------------- scoring


def average_precision(ranking: list[str], relevant: set[str]) -> float:
    hits, total = 0, 0.0
    for rank, name in enumerate(ranking, 1):
        if name in relevant:
            hits += 1
            total += hits / rank
    return total / max(1, len(relevant))


def library_rankings(lib: picsearch.Library, queries, **options) -> dict[str, list[str]]:
    return {q: [Path(h.path).stem for h in lib.search(q, k=len(lib), **options)] for q in queries}


def map_by_group(rankings, queries, halves: dict[str, str] | None = None) -> dict[str, float]:
    """mAP per group, over all queries, and per half when ``halves`` gives each query's."""
    groups: dict[str, list[float]] = {}
    for query, (group, relevant) in queries.items():
        ap = average_precision(rankings[query], relevant)
        groups.setdefault(group, []).append(ap)
        groups.setdefault("all", []).append(ap)
        if halves is not None:
            groups.setdefault(halves[query], []).append(ap)
    return {g: float(np.mean(v)) for g, v in groups.items()}


class Unblended:
    """A ``full`` library indexed with blending off: its raw joint vectors and concepts,
    to score blending weights and the extra-vectors alternative without re-indexing."""

    def __init__(self, lib: picsearch.Library) -> None:
        self.lib = lib
        self.ids, self.joint = lib.vectors("joint")
        rows = lib._catalog.rows(self.ids)
        self.names = [Path(rows[int(i)].path).stem for i in self.ids]
        stored = lib._catalog.concepts.get(self.ids)
        self.found = [stored.get(int(i)) for i in self.ids]
        phrases = sorted({c.phrase for s in self.found if s for c in s.concepts})
        self.phrases = dict(zip(phrases, lib.encoder.embed_texts(phrases), strict=True))

    def scores(self, query: str, variant: str, weight: float) -> np.ndarray:
        q = self.lib.encoder.embed_texts([query])[0]
        if variant == "blend":
            return blend(self.joint, self.found, self.phrases, weight) @ q
        best = self.joint @ q  # "max": each photo's best match over its vectors
        for row, stored in enumerate(self.found):
            for c in stored.concepts if stored else ():
                best[row] = max(best[row], c.confidence * float(self.phrases[c.phrase] @ q))
        return best

    def ranking(self, query: str, variant: str, weight: float, text_weight: float) -> list[str]:
        semantic = list(
            zip(self.scores(query, variant, weight).tolist(), self.ids.tolist(), strict=True)
        )
        words = query_words(query)
        matches = self.lib._catalog.concepts.match(words) if words else {}
        order = {int(i): n for i, n in zip(self.ids, self.names, strict=True)}
        return [order[i] for _, i in fuse(semantic, matches, text_weight)]

    def caption_recall(self, variant: str, weight: float) -> dict[str, float]:
        """Captioned recall@1 per half."""
        ranks: dict[str, list[int]] = {half: [] for half in HALVES}
        for wanted in captions():
            photo = wanted.photo
            scores = self.scores(wanted.text, variant, weight)
            semantic = zip(scores.tolist(), self.ids.tolist(), strict=True)
            words = query_words(wanted.text)
            matches = self.lib._catalog.concepts.match(words) if words else {}
            fused = {i: s for s, i in fuse(semantic, matches, TEXT_WEIGHT)}
            by_name = {n: fused[int(i)] for i, n in zip(self.ids, self.names, strict=True)}
            own = by_name[photo]
            rank = 1 + sum(s >= own for n, s in by_name.items() if n != photo)
            ranks[wanted.half].append(rank)
        return {half: float(np.mean([r == 1 for r in ranks[half]])) for half in HALVES}


# ----------------------------------------------------------------- runs


def indexed(folder: Path, level: str, tmp: Path, blend_weight: float | None = None):
    saved = bank_module.BLEND_WEIGHT
    if blend_weight is not None:
        bank_module.BLEND_WEIGHT = blend_weight
    try:
        lib = picsearch.open(tmp / f"{folder.name}-{level}-{blend_weight}.db", model="default")
        summary = lib.index(folder, concepts=level)
    finally:
        bank_module.BLEND_WEIGHT = saved
    if summary.skipped:
        raise RuntimeError(f"skipped {summary.skipped}")
    return lib


def run_quality(args: argparse.Namespace) -> None:
    folder, by_half = all_concept_queries()
    queries = {**by_half["tuning"], **by_half["held_out"]}
    halves = {query: half for half in HALVES for query in by_half[half]}
    samples = DATA / "samples"
    write_sample_photos(samples)
    results, captioned = [], []
    per_query: dict[str, dict[str, list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="picsearch-concepts-") as tmp_name:
        tmp = Path(tmp_name)
        for level in LEVELS:
            log(f"quality: indexing {folder} at --concepts {level}...")
            with indexed(folder, level, tmp) as lib:
                rankings = library_rankings(lib, queries)
                per_query[level] = rankings
                results.append((level, map_by_group(rankings, queries, halves)))
                if level == "full":
                    rankings = library_rankings(lib, queries, text_weight=0.0)
                    unfused = map_by_group(rankings, queries, halves)
                    results.append(("full, no text fusion", unfused))
            with indexed(samples, level, tmp) as lib:
                captioned.append((level, recall_by_half(rank_captions(lib, captions()))))
        log("quality: the unblended full index, for the blend variants...")
        with indexed(folder, "full", tmp, 0.0) as lib, indexed(samples, "full", tmp, 0.0) as cap:
            raw, raw_cap = Unblended(lib), Unblended(cap)
            for variant, weight in [("blend", w) for w in args.weights] + [("max", 1.0)]:
                label = f"full, blend {weight:g}" if variant == "blend" else "full, extra vectors"
                rankings = {q: raw.ranking(q, variant, weight, TEXT_WEIGHT) for q in queries}
                results.append((label, map_by_group(rankings, queries, halves)))
                captioned.append((label, raw_cap.caption_recall(variant, weight)))
    print_quality(results, captioned, queries, halves)
    if args.verbose:
        print_per_query(per_query, queries)


def recall_by_half(ranked) -> dict[str, float]:
    return {h: float(np.mean([r.rank == 1 for r in ranked if r.half == h])) for h in HALVES}


def print_quality(results, captioned, queries, halves: dict[str, str]) -> None:
    groups = ["people", "text", "colour", "objects", "all", *HALVES]
    counts = {g: sum(1 for gg, _ in queries.values() if gg == g) for g in groups[:4]}
    counts["all"] = len(queries)
    counts.update({h: sum(1 for half in halves.values() if half == h) for h in HALVES})
    plain = results[0][1]["all"]
    print("\n## concept queries: mAP (queries per group in brackets)")
    header = ["variant", *[f"{g} ({counts[g]})" for g in groups], "all / plain"]
    rows = [
        [label, *[f"{m[g]:.3f}" for g in groups], f"{m['all'] / plain:.2f}x"]
        for label, m in results
    ]
    print_table(header, rows)
    print("\n## captioned sample set: recall@1 per half (no regression allowed)")
    base = captioned[0][1]
    rows = [
        [label, *(f"{r[h]:.3f}" for h in HALVES), *(f"{r[h] - base[h]:+.3f}" for h in HALVES)]
        for label, r in captioned
    ]
    print_table(["variant", *HALVES, *(f"{h} vs plain" for h in HALVES)], rows)


def print_per_query(per_query: dict[str, dict[str, list[str]]], queries) -> None:
    print("\n## per query: AP at each level, and the top 3 at the last")
    last = list(per_query)[-1]
    rows = []
    for query, (group, relevant) in queries.items():
        aps = [f"{average_precision(r[query], relevant):.3f}" for r in per_query.values()]
        rows.append([group, query, str(len(relevant)), *aps, ", ".join(per_query[last][query][:3])])
    print_table(["group", "caption", "relevant", *per_query, "top-1"], rows)


def run_speed(args: argparse.Namespace) -> None:
    folder, _ = concept_set()
    photos = len(list(folder.glob("*.jpg")))
    seconds: dict[str, list[float]] = {level: [] for level in LEVELS}
    with tempfile.TemporaryDirectory(prefix="picsearch-concepts-speed-") as tmp_name:
        for round_ in range(args.rounds):
            for level in LEVELS:
                log(f"speed: round {round_ + 1}, --concepts {level}...")
                path = Path(tmp_name) / f"speed-{round_}-{level}.db"
                with picsearch.open(path, model="default") as lib:
                    seconds[level].append(lib.index(folder, concepts=level).seconds)
    print(f"\n## indexing cost per --concepts level ({photos} photos, median of {args.rounds})")
    base = statistics.median(seconds["off"])
    rows = []
    for level in LEVELS:
        s = statistics.median(seconds[level])
        rows.append([level, f"{photos / s:.1f}", f"{1000 * s / photos:.0f}", f"{s / base:.2f}x"])
    print_table(["level", "images/s", "ms per image", "time vs off"], rows)


# ----------------------------------------------------------------- OCR sweep

OCR_WORDS = ["BAKERY", "EXIT", "PHARMACY", "TICKETS", "GARDEN", "MUSEUM", "PARKING", "HOTEL"]


def ocr_set() -> list[tuple[bytes, list[str]]]:
    """Photos at 2000 px, each with one word on a white band and one outlined word straight
    on the photo, from 16 to 58 px tall (on a 12-megapixel photo: about 30 to 100 px)."""
    import io

    cases = []
    names = ["chelsea", "coffee", "rocket", "china", "flower", "astronaut", "motorcycle", "grass"]
    for index, name in enumerate(names):
        image = load_sample_photo(name).convert("RGB")
        image = image.resize((2000, 2000 * image.height // image.width), Image.Resampling.BICUBIC)
        words = [OCR_WORDS[index], OCR_WORDS[(index + 3) % len(OCR_WORDS)]]
        draw = ImageDraw.Draw(image)
        banded, outlined = font(16 + 6 * index), font(58 - 6 * index)
        box = draw.textbbox((150, 150), words[0], font=banded)
        draw.rectangle((box[0] - 8, box[1] - 8, box[2] + 8, box[3] + 8), fill="white")
        draw.text((150, 150), words[0], fill="black", font=banded)
        draw.text(
            (700, 650), words[1], fill="white", font=outlined, stroke_width=2, stroke_fill="black"
        )
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        cases.append((buffer.getvalue(), words))
    return cases


def run_ocr(args: argparse.Namespace) -> None:
    from picsearch.concepts.ocr import OcrReader
    from picsearch.images import decode

    cases = ocr_set()
    rows = []
    for detect_side in (480, 640, 960):
        reader = OcrReader(detect_side=detect_side)
        for decode_side in (256, 480, 640, 960):
            found, elapsed = 0, 0.0
            for data, words in cases:
                image, _, _ = decode(data, short_side=decode_side, max_pixels=10**9)
                started = time.perf_counter()
                text = " ".join(t for t, _ in reader.lines(image)).upper().replace(" ", "")
                elapsed += time.perf_counter() - started
                found += sum(word in text for word in words)
            total = sum(len(w) for _, w in cases)
            rows.append(
                [
                    str(decode_side),
                    str(detect_side),
                    f"{found / total:.2f}",
                    f"{1000 * elapsed / len(cases):.0f}",
                ]
            )
            log(f"ocr: decode {decode_side}, detect {detect_side}: {rows[-1][2]}")
    print(f"\n## OCR word recall vs cost ({len(cases)} photos 2000 px wide, 2 words each)")
    print_table(["decode short side", "detect limit", "word recall", "OCR ms/photo"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what", nargs="*", default=["all"], choices=["all", "quality", "speed", "ocr"]
    )
    parser.add_argument("--rounds", type=int, default=2, help="speed rounds (median)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--verbose", action="store_true", help="per-query table")
    args = parser.parse_args(argv)
    weights = f"blend weight {bank_module.BLEND_WEIGHT}, text weight {TEXT_WEIGHT}"
    print(f"# concept benchmark: {weights}")
    if {"all", "quality"} & set(args.what):
        run_quality(args)
    if {"all", "speed"} & set(args.what):
        run_speed(args)
    if {"all", "ocr"} & set(args.what):
        run_ocr(args)


if __name__ == "__main__":
    main()
