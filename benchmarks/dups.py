"""Near-duplicate finding: picsearch vs a perceptual hash on a labelled set of real photos.

    python benchmarks/dups.py [--threshold T] [--margin M] [--sizes 25000,50000,100000]
                              [--exact-n 20000] [--ann] [--skip-quality] [--skip-scale]

The labelled set is built once into ``benchmarks/data/dups/`` (gitignored): every
original photo (the scikit-image, scikit-learn and matplotlib samples, plus the
photos of the Debian packages ``mate-backgrounds`` and ``lomiri-wallpapers-16.04``
when installed) and one transformed copy per family (resize 30-80 %, JPEG quality
20-90, crop 70-95 %, a 90/180/270 degree turn, a 2-10 degree turn cropped upright,
a mirror image, brightness/contrast/colour shifts, a caption, a border, and a
"combo": small crop, shrink and JPEG 30-70), mixed with distractors that are
similar but different: the other frame of scikit-image's stereo motorcycle pair,
and pairs of neighbouring shots (the left and right 55 % of a photo used for
nothing else).

Quality (same run, same files): picsearch (the default model's visual vectors,
the pair finding and grouping of ``picsearch.dups.find_duplicates``) and pHash
(``imagehash``, Hamming distance, union-find groups). A found pair is two files in
one group; a true pair is two files from one original. It prints the threshold
sweep of each, then precision, recall and F1 per family (the originals, that
family's copies and the distractors) and overall, and the chain-guard margins.

Scale: synthetic 1280-d vectors shaped like the visual space, with planted copies
and chains: LSH recall against exact all-pairs search (``--exact-n``), then time,
traced peak memory and recall of grouping each of ``--sizes``; ``--ann`` adds the
library's ANN index as the candidate source, for comparison.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from picsearch.samples import load_sample_photo, sample_names

DATA = Path(__file__).resolve().parent / "data" / "dups"
#: Debian packages whose photos join the set when installed (apt-get install ...).
WALLPAPER_GLOBS = (
    "/usr/share/backgrounds/mate/nature/*.jpg",  # mate-backgrounds
    "/usr/share/backgrounds/*_by_*.jpg",  # lomiri-wallpapers-16.04
)
FAMILIES = (
    "resize",
    "jpeg",
    "crop",
    "rotate90",
    "rotate_small",
    "flip",
    "colour",
    "text",
    "border",
    "combo",
)
#: Longest side of an original in the set: big enough to be a photo, small enough to be quick.
MAX_SIDE = 1600
#: Chain-guard margins compared (2.0: no guard at all).
MARGINS = (0.05, 0.1, 0.15, 0.2, 2.0)
#: Photos cut into two barely overlapping "neighbouring shots" (distractors), by position.
BURST_EVERY = 6


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- photos


def source_photos() -> dict[str, Image.Image]:
    """Real photos that ship in installed packages, as RGB, long side at most MAX_SIDE."""
    photos = {name: load_sample_photo(name) for name in sample_names()}
    for pattern in WALLPAPER_GLOBS:
        folder, glob = pattern.rsplit("/", 1)
        for path in sorted(Path(folder).glob(glob)):
            photos[path.stem.split("_by_")[0].lower()] = Image.open(path)
    out = {}
    for name, image in photos.items():
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
        image = image.convert("RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        out[name] = image
    return out


def stereo_right() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.stereo_motorcycle()[1]).convert("RGB")


# --------------------------------------------------------------------------- transforms


def _resize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = rng.uniform(0.3, 0.8)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _crop(image: Image.Image, rng: np.random.Generator, low=0.7, high=0.95) -> Image.Image:
    keep = rng.uniform(low, high)
    width, height = round(image.width * keep), round(image.height * keep)
    left = int(rng.integers(0, image.width - width + 1))
    top = int(rng.integers(0, image.height - height + 1))
    return image.crop((left, top, left + width, top + height))


def _rotate_small(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A straightened photo: turned 2-10 degrees, cropped to the largest upright rectangle."""
    angle = float(rng.uniform(2, 10) * rng.choice([-1, 1]))
    turned = image.rotate(angle, Image.Resampling.BICUBIC, expand=False)
    a = np.deg2rad(abs(angle))
    w, h = image.size
    # Largest axis-aligned rectangle of the same aspect inside the turned frame.
    scale = min(w, h) / (min(w, h) * np.cos(a) + max(w, h) * np.sin(a))
    cw, ch = round(w * scale), round(h * scale)
    left, top = (w - cw) // 2, (h - ch) // 2
    return turned.crop((left, top, left + cw, top + ch))


def _colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.4))
    return ImageEnhance.Color(image).enhance(rng.uniform(0.3, 1.7))


def _text(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    size = max(12, round(image.height * rng.uniform(0.06, 0.12)))
    font = ImageFont.load_default(size=size)
    words = ["Summer 2019", "IMG_4032", "Best day ever!", "(c) Photo Club", "Greetings from"]
    caption = words[int(rng.integers(len(words)))]
    y = round(image.height * rng.choice([0.04, 0.82]))
    draw.text(
        (round(image.width * 0.05), y),
        caption,
        font=font,
        fill="white",
        stroke_width=2,
        stroke_fill="black",
    )
    return image


def _border(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    width = max(2, round(min(image.size) * rng.uniform(0.03, 0.12)))
    colour = [(255, 255, 255), (0, 0, 0), (200, 30, 40), (240, 230, 200)][int(rng.integers(4))]
    return ImageOps.expand(image, border=width, fill=colour)


def _combo(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What a messaging app does: a small crop, shrunk, re-compressed (quality set on save)."""
    return _resize(_crop(image, rng, 0.85, 0.97), rng)


def transform(family: str, image: Image.Image, rng: np.random.Generator) -> Image.Image:
    if family == "resize":
        return _resize(image, rng)
    if family == "jpeg":
        return image  # the quality is chosen on save
    if family == "crop":
        return _crop(image, rng)
    if family == "rotate90":
        return image.transpose(
            [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270][
                int(rng.integers(3))
            ]
        )
    if family == "rotate_small":
        return _rotate_small(image, rng)
    if family == "flip":
        return ImageOps.mirror(image)
    if family == "colour":
        return _colour(image, rng)
    if family == "text":
        return _text(image, rng)
    if family == "border":
        return _border(image, rng)
    if family == "combo":
        return _combo(image, rng)
    raise ValueError(family)


def _quality(family: str, rng: np.random.Generator) -> int:
    if family == "jpeg":
        return int(rng.integers(20, 91))
    if family == "combo":
        return int(rng.integers(30, 71))
    return 90


# --------------------------------------------------------------------------- the labelled set


@dataclass(frozen=True)
class Labelled:
    """One file of the set: ``cluster`` names its original (distractors: their own name)."""

    path: Path
    cluster: str
    family: str  # "original", a transformation family, or "distractor"


def build_set(folder: Path = DATA) -> list[Labelled]:
    """Write the labelled set once (reused afterwards); returns its files and labels."""
    manifest = folder / "manifest.json"
    if manifest.exists():
        rows = json.loads(manifest.read_text())
        return [Labelled(folder / r["file"], r["cluster"], r["family"]) for r in rows]
    folder.mkdir(parents=True, exist_ok=True)
    photos = source_photos()
    log(f"building the labelled set from {len(photos)} photos into {folder} ...")
    rows = []
    for position, (name, image) in enumerate(sorted(photos.items())):
        rng = np.random.default_rng(position)
        if position % BURST_EVERY == BURST_EVERY - 1 and image.width >= 1000:
            rows += _burst(folder, name, image)
            continue
        image.save(folder / f"{name}.jpg", quality=95)
        rows.append({"file": f"{name}.jpg", "cluster": name, "family": "original"})
        for family in FAMILIES:
            copy = transform(family, image, rng)
            file = f"{name}__{family}.jpg"
            copy.save(folder / file, quality=_quality(family, rng))
            rows.append({"file": file, "cluster": name, "family": family})
    stereo_right().save(folder / "motorcycle_right.jpg", quality=95)
    rows.append(
        {"file": "motorcycle_right.jpg", "cluster": "motorcycle_right", "family": "distractor"}
    )
    manifest.write_text(json.dumps(rows, indent=1))
    return build_set(folder)


def _burst(folder: Path, name: str, image: Image.Image) -> list[dict[str, str]]:
    """Two neighbouring shots of one scene: the left and right 55 % of a photo (10 % shared)."""
    width = round(image.width * 0.55)
    rows = []
    for side, left in (("a", 0), ("b", image.width - width)):
        file = f"{name}__shot_{side}.jpg"
        image.crop((left, 0, left + width, image.height)).save(folder / file, quality=92)
        rows.append({"file": file, "cluster": f"{name}_{side}", "family": "distractor"})
    return rows


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float


def score_groups(labels: list[Labelled], group_of: np.ndarray, keep: np.ndarray) -> Score:
    """Precision, recall and F1 of the pairs of ``keep``-ed files placed in one group.

    ``group_of[i]`` is the group of file i (-1: in none); a pair is true when both
    files come from the same original.
    """
    index = np.flatnonzero(keep)
    clusters = np.array([labels[i].cluster for i in index])
    groups = group_of[index]
    upper = np.triu_indices(len(index), k=1)
    truth = (clusters[:, None] == clusters[None, :])[upper]
    found = ((groups[:, None] == groups[None, :]) & (groups[:, None] >= 0))[upper]
    hits = int((truth & found).sum())
    precision = hits / max(int(found.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    return Score(precision, recall, 2 * precision * recall / max(precision + recall, 1e-12))


def family_scores(labels: list[Labelled], group_of: np.ndarray) -> dict[str, Score]:
    """Per family: the originals, that family's copies and the distractors; then overall."""
    families = np.array([item.family for item in labels])
    scores = {}
    for family in FAMILIES:
        keep = np.isin(families, [family, "original", "distractor"])
        scores[family] = score_groups(labels, group_of, keep)
    scores["overall"] = score_groups(labels, group_of, np.ones(len(labels), dtype=bool))
    return scores


def as_assignment(n: int, groups: list[np.ndarray] | list[list[int]]) -> np.ndarray:
    group_of = np.full(n, -1)
    for number, rows in enumerate(groups):
        group_of[np.asarray(rows, dtype=np.int64)] = number
    return group_of


def union_find_groups(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for x in range(n):
        members.setdefault(root(x), []).append(x)
    return [rows for rows in members.values() if len(rows) > 1]


# --------------------------------------------------------------------------- the two methods


def picsearch_vectors(labels: list[Labelled], db: Path, turned: bool = False) -> np.ndarray:
    """Index the set with the default model; the visual vectors in ``labels`` order
    (with ``turned``, each photo's upright and turned views: (n, 4, dim))."""
    import picsearch
    from picsearch.dups.turned import turned_views

    with picsearch.open(db) as library:
        library.index([DATA])
        ids, vectors = library.vectors("visual")
        rows = {Path(library.get(int(i)).path): k for k, i in enumerate(ids)}
        order = [rows[item.path] for item in labels]
        if not turned:
            return vectors[order]
        started = time.perf_counter()
        views = turned_views(library, ids[order], vectors[order], "visual")
        seconds = time.perf_counter() - started
        log(f"turned views of {len(order)} photos: {seconds:.1f} s")
        print(f"--turned: embedding 3 turned views of {len(order)} photos took {seconds:.1f} s")
        return views


def picsearch_groups(vectors: np.ndarray, threshold: float, margin: float) -> list[np.ndarray]:
    from picsearch.dups import group_rows, similar_pairs
    from picsearch.dups.pairs import pairs_of_views

    if vectors.ndim == 3:
        pairs, sims = pairs_of_views(vectors, threshold=threshold, lsh=None)
    else:
        pairs, sims = similar_pairs(vectors, threshold=threshold)
    return group_rows(vectors, pairs, sims, guard=threshold - margin)


def phash_bits(labels: list[Labelled]) -> np.ndarray:
    import imagehash

    return np.array([imagehash.phash(Image.open(item.path)).hash.ravel() for item in labels])


def phash_groups(bits: np.ndarray, distance: int) -> list[list[int]]:
    hamming = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    a, b = np.nonzero(np.triu(hamming <= distance, k=1))
    return union_find_groups(len(bits), list(zip(a.tolist(), b.tolist(), strict=True)))


# --------------------------------------------------------------------------- scale


def synthetic(n: int, dim: int = 1280, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors shaped like CNN features (non-negative, half zeros, unrelated photos at
    cosine ~0.3), 10 % of them noisy copies of others (cosine 0.8-1.0), and 1 % in chains of 30
    (each step cosine ~0.93 to the last, drifting to ~0.4 from the start).

    Returns the vectors and each row's family (the row it was copied from; itself if none).
    """
    rng = np.random.default_rng(seed)
    mean = rng.normal(-0.5, 0.5, dim).astype(np.float32)
    basis = (rng.normal(0, 1, (48, dim)) * (2.0 / np.sqrt(48))).astype(np.float32)
    copies, chained = n // 10, n // 100
    originals = n - copies - chained
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, originals, 8192):
        m = min(8192, originals - start)
        latent = rng.standard_normal((m, 48), dtype=np.float32)
        noise = rng.standard_normal((m, dim), dtype=np.float32) * 0.5
        out[start : start + m] = np.maximum(mean + latent @ basis + noise, 0)
    family = np.arange(n)
    family[originals : originals + copies] = rng.integers(0, originals, copies)
    for start in range(originals, originals + copies, 8192):
        rows = np.arange(start, min(start + 8192, originals + copies))
        source = out[family[rows]]
        scale = np.linalg.norm(source, axis=1, keepdims=True) / np.sqrt(dim)
        spread = rng.uniform(0.0, 1.0, (len(rows), 1)).astype(np.float32) * scale
        out[rows] = np.maximum(source + rng.standard_normal(source.shape, np.float32) * spread, 0)
    for row in range(originals + copies, n):  # chains of 30, each a step from the last
        previous = out[row - 1] if (row - originals - copies) % 30 else out[rng.integers(originals)]
        scale = np.linalg.norm(previous) / np.sqrt(dim)
        out[row] = np.maximum(previous + rng.standard_normal(dim, np.float32) * 0.45 * scale, 0)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, family


def planted_truth(vectors: np.ndarray, family: np.ndarray, threshold: float) -> set[int]:
    """Keys (i * n + j) of the pairs within planted families at or above the threshold."""
    n = len(vectors)
    order = np.argsort(family, kind="stable")
    cuts = np.flatnonzero(np.diff(family[order])) + 1
    keys = set()
    for rows in np.split(order, cuts):
        if len(rows) > 1:
            sims = vectors[rows] @ vectors[rows].T
            a, b = np.nonzero(np.triu(sims >= threshold, k=1))
            lo, hi = np.minimum(rows[a], rows[b]), np.maximum(rows[a], rows[b])
            keys.update((lo * n + hi).tolist())
    return keys


def timed_grouping(vectors: np.ndarray, threshold: float, margin: float):
    """(seconds, traced peak bytes, pairs, cosines, groups): LSH pairs + guarded groups."""
    import time
    import tracemalloc

    from picsearch.dups import LshOptions, group_rows, similar_pairs

    tracemalloc.start()
    started = time.perf_counter()
    pairs, sims = similar_pairs(vectors, threshold=threshold, lsh=LshOptions())
    groups = group_rows(vectors, pairs, sims, guard=threshold - margin)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, pairs, sims, groups


# --------------------------------------------------------------------------- report


def _margin_name(margin: float) -> str:
    return "none" if margin >= 1 else f"{margin:g}"


def print_sweep(title: str, rows: list[tuple[str, Score]]) -> None:
    print(f"\n{title}")
    print(f"{'':>10} {'precision':>9} {'recall':>7} {'F1':>6}")
    for name, s in rows:
        print(f"{name:>10} {s.precision:9.3f} {s.recall:7.3f} {s.f1:6.3f}")


def print_families(ours: dict[str, Score], theirs: dict[str, Score], names: tuple[str, str]):
    print(f"\n{'family':13} | {names[0]:^22} | {names[1]:^22} |")
    print(f"{'':13} | {'P':>6} {'R':>6} {'F1':>6}   | {'P':>6} {'R':>6} {'F1':>6}   | F1 ahead")
    for family in (*FAMILIES, "overall"):
        a, b = ours[family], theirs[family]
        print(
            f"{family:13} | {a.precision:6.3f} {a.recall:6.3f} {a.f1:6.3f}   | "
            f"{b.precision:6.3f} {b.recall:6.3f} {b.f1:6.3f}   | {a.f1 - b.f1:+.3f}"
        )


def quality(threshold: float | None, margin: float, turned: bool = False) -> None:
    from picsearch.dups import DEFAULT_THRESHOLD

    labels = build_set()
    counts = {f: sum(item.family == f for item in labels) for f in ("original", "distractor")}
    log(f"indexing {len(labels)} files with the default model ...")
    vectors = picsearch_vectors(labels, DATA.parent / "dups.db", turned)
    n = len(labels)
    print(
        f"labelled set: {n} files = {counts['original']} originals x (1 + {len(FAMILIES)} "
        f"copies) + {counts['distractor']} distractors"
    )
    sweep = []
    for value in np.round(np.arange(0.70, 0.905, 0.02), 2):
        groups = picsearch_groups(vectors, float(value), margin)
        sweep.append((f"{value:.2f}", family_scores(labels, as_assignment(n, groups))["overall"]))
    print_sweep("picsearch: cosine threshold sweep (overall pairs)", sweep)
    chosen = DEFAULT_THRESHOLD if threshold is None else threshold
    best = max(sweep, key=lambda row: row[1].f1)
    print(f"best F1 at {best[0]}; default {DEFAULT_THRESHOLD}; scored below at {chosen}")

    bits = phash_bits(labels)
    hash_sweep = []
    for distance in range(0, 25, 2):
        groups = phash_groups(bits, distance)
        hash_sweep.append((f"<= {distance}", family_scores(labels, as_assignment(n, groups))))
    print_sweep(
        "pHash: Hamming distance sweep (overall pairs)",
        [(name, s["overall"]) for name, s in hash_sweep],
    )
    hash_best = max(hash_sweep, key=lambda row: row[1]["overall"].f1)
    print(f"pHash scored below at its best distance, {hash_best[0]}")

    ours = family_scores(labels, as_assignment(n, picsearch_groups(vectors, chosen, margin)))
    print_families(ours, hash_best[1], (f"picsearch {chosen}", f"pHash {hash_best[0]}"))
    print(f"\nchain guard margin (guard = threshold - margin), overall F1 at {chosen}:")
    for value in MARGINS:
        groups = picsearch_groups(vectors, chosen, value)
        f1 = family_scores(labels, as_assignment(n, groups))["overall"].f1
        print(f"  margin {_margin_name(value):>5}: F1 {f1:.3f}")


def scale(
    sizes: list[int], threshold: float, margin: float, exact_n: int, compare_ann: bool
) -> None:
    import time

    from picsearch.dups import LshOptions, group_rows, similar_pairs
    from picsearch.dups.pairs import exact_pairs

    print(f"\nscale: synthetic 1280-d vectors, threshold {threshold}, LSH {LshOptions()}")
    vectors, _ = synthetic(exact_n, seed=1)
    started = time.perf_counter()
    truth, _ = exact_pairs(vectors, threshold)
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    found, _ = similar_pairs(vectors, threshold=threshold, lsh=LshOptions())
    lsh_s = time.perf_counter() - started
    n = len(vectors)
    recall = len(np.intersect1d(found[:, 0] * n + found[:, 1], truth[:, 0] * n + truth[:, 1]))
    print(
        f"n={exact_n:,}: LSH pairs recall vs exact all-pairs {recall / max(len(truth), 1):.4f} "
        f"({recall:,} of {len(truth):,}); LSH {lsh_s:.1f} s, exact {exact_s:.1f} s "
        f"(exact / LSH = {exact_s / lsh_s:.1f})"
    )
    if compare_ann:
        ann_line(vectors, truth, threshold)
    print(
        f"{'n':>9} {'seconds':>8} {'peak MB':>8} {'input MB':>9} {'pairs':>9} {'recall*':>8} "
        f"{'>= 0.85':>8} {'grouped':>8} {'groups':>7} {'largest':>8} {'no guard':>9}"
    )
    for size in sizes:
        vectors, family = synthetic(size)
        seconds, peak, pairs, sims, groups = timed_grouping(vectors, threshold, margin)
        keys = pairs[:, 0] * size + pairs[:, 1]
        group_of = as_assignment(size, groups)
        recalls = []
        for floor in (threshold, 0.85):
            truth = np.array(sorted(planted_truth(vectors, family, floor)), dtype=np.int64)
            recalls.append(np.isin(truth, keys).mean())
        a, b = truth // size, truth % size
        recalls.append(((group_of[a] == group_of[b]) & (group_of[a] >= 0)).mean())
        unguarded = group_rows(vectors, pairs, sims, guard=-2.0)
        print(
            f"{size:>9,} {seconds:8.1f} {peak / 1e6:8.0f} {vectors.nbytes / 1e6:9.0f} "
            f"{len(pairs):>9,} {recalls[0]:8.4f} {recalls[1]:8.4f} {recalls[2]:8.4f} "
            f"{len(groups):>7,} {max(map(len, groups)):>8} {max(map(len, unguarded)):>9}"
        )
    print("largest group by chain-guard margin, on the last size:")
    for value in MARGINS:
        largest = max(map(len, group_rows(vectors, pairs, sims, guard=threshold - value)))
        print(f"  margin {_margin_name(value):>5}: {largest}")
    print(
        "recall*: of the pairs within planted copy families at or above the threshold; "
        ">= 0.85: of those at 0.85 or more; grouped: of the latter, the share in one group"
    )


def ann_line(vectors: np.ndarray, truth: np.ndarray, threshold: float, k: int = 16) -> None:
    """The other candidate source: the library's ANN index ("auto"), each photo's k nearest."""
    import time

    from picsearch import ann

    n = len(vectors)
    started = time.perf_counter()
    index = ann.build(vectors, None, "auto")
    built = time.perf_counter() - started
    scores, ids = index.search(vectors, k)
    searched = time.perf_counter() - started - built
    a, b = np.repeat(np.arange(n), k), ids.ravel()
    keep = (b >= 0) & (b != a) & (scores.ravel() >= threshold)
    keys = np.minimum(a[keep], b[keep]) * n + np.maximum(a[keep], b[keep])
    recall = np.isin(truth[:, 0] * n + truth[:, 1], keys).mean()
    print(
        f"n={n:,}: ANN index ({index.info()['backend']}, k={k}) pairs recall {recall:.4f}; "
        f"build + tune {built:.1f} s, all {n:,} queries {searched:.1f} s"
    )


def main() -> None:
    import argparse

    from picsearch.dups import DEFAULT_THRESHOLD, GUARD_MARGIN

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, help="score picsearch at this threshold")
    parser.add_argument("--margin", type=float, default=GUARD_MARGIN, help="chain guard margin")
    parser.add_argument("--sizes", default="25000,50000,100000", help="synthetic set sizes")
    parser.add_argument("--exact-n", type=int, default=20000, help="size checked against exact")
    parser.add_argument(
        "--ann", action="store_true", help="also time the ANN index as the candidate source"
    )
    parser.add_argument(
        "--turned", action="store_true", help="score picsearch with dups --turned views"
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    if not args.skip_quality:
        quality(args.threshold, args.margin, args.turned)
    if not args.skip_scale:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        threshold = args.threshold or DEFAULT_THRESHOLD
        scale(sizes, threshold, args.margin, args.exact_n, args.ann)


if __name__ == "__main__":
    main()
