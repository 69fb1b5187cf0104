"""Search quality of the default model on halves no one tuned for, the weak-match cutoff,
and text-query latency.

    python benchmarks/quality.py [--model default] [--levels off fast full] [--verbose]
    python benchmarks/quality.py --model tiny --levels off     # quick, no concepts

Every quality set the project owns is split into a fixed **tuning** half and a
**held-out** half (``split_halves``: keys ordered by a SHA-256 of their text, then
dealt alternately, so the split is deterministic and even; docs/quality.md lists it):

- the captioned set (``picsearch.samples.SAMPLE_CAPTIONS``) is split **by photo**, so
  no photo has captions in both halves; the held-out photos also get captions
  written for them afterwards (``benchmarks/data/quality_sets.json``, never tuned on);
- the concept queries of ``benchmarks/concepts.py`` are split by query within each
  group (people, text, colour, objects); queries written afterwards go to the held-out
  half;
- ~30 nonsense queries (gibberish, and things no photo shows), half in each.

Settings are chosen on the tuning half; a change counts only if the held-out half
improves. For each model and each ``--concepts`` level it indexes the sample photos
and the concept set into fresh libraries and prints, per half: captioned recall@1,
recall@5 and MRR, concept mAP, indexing images/s, and the weak-match cutoff's figures
(share of nonsense queries whose best hit is under it, "no good match"; share of real
captions whose own photo scores under it, "hidden"), for the encoder's stored cutoff
and for one fitted on the tuning half at that level. Then text-query latency.
Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from index import sample_photos  # benchmarks/index.py, beside this script

import picsearch
from picsearch.encoders.relevance import weak_cutoff_of
from picsearch.samples import SAMPLE_CAPTIONS

HALVES = ("tuning", "held_out")
SETS_FILE = Path(__file__).resolve().parent / "data" / "quality_sets.json"
#: The share of real captions the cutoff may hide (their own photo flagged weak).
MAX_HIDDEN = 0.05

WARM_UP = 20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- the halves


def split_key(key: str) -> str:
    return hashlib.sha256(f"picsearch quality split: {key}".encode()).hexdigest()


def split_halves(keys: list[str]) -> dict[str, str]:
    """Each key's half: ordered by the hash of its text, then dealt tuning, held-out,
    tuning... (deterministic, and the halves differ in size by one at most)."""
    ordered = sorted(keys, key=split_key)
    return {key: HALVES[i % 2] for i, key in enumerate(ordered)}


def quality_sets() -> dict:
    return json.loads(SETS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Caption:
    photo: str
    text: str
    half: str
    new: bool = False  # written for the held-out half after the split


def captions() -> list[Caption]:
    """Every caption with its half (by photo), the held-out half's new captions included."""
    halves = split_halves(list(SAMPLE_CAPTIONS))
    found = [Caption(p, t, halves[p]) for p, texts in SAMPLE_CAPTIONS.items() for t in texts]
    for photo, texts in quality_sets()["new_captions"].items():
        if halves[photo] != "held_out":
            raise ValueError(f"new captions are for held-out photos only, not {photo!r}")
        found += [Caption(photo, text, "held_out", new=True) for text in texts]
    return found


def split_concept_queries(queries: dict[str, tuple[str, set[str]]]) -> dict[str, dict]:
    """The concept queries by half: each group's queries split alike; new ones held out."""
    new = set(quality_sets()["new_concept_queries"])
    halves: dict[str, dict] = {half: {} for half in HALVES}
    groups: dict[str, list[str]] = {}
    for query, (group, _) in queries.items():
        if query not in new:
            groups.setdefault(group, []).append(query)
    for members in groups.values():
        for query, half in split_halves(members).items():
            halves[half][query] = queries[query]
    for query in new:
        halves["held_out"][query] = queries[query]
    return halves


def nonsense() -> dict[str, list[str]]:
    return quality_sets()["nonsense"]


# ----------------------------------------------------------------- measuring


@dataclass
class Ranked:
    photo: str
    caption: str
    rank: int  # 1 = the caption's own photo scored above every other photo
    top: str
    top_score: float
    own_score: float = float("nan")
    half: str = ""


@dataclass
class Latency:
    search_ms: np.ndarray
    encoder_ms: np.ndarray


def recall(ranked: list[Ranked], k: int) -> float:
    return float(np.mean([r.rank <= k for r in ranked])) if ranked else float("nan")


def mrr(ranked: list[Ranked]) -> float:
    return float(np.mean([1.0 / r.rank for r in ranked])) if ranked else float("nan")


@dataclass
class ModelResult:
    model: str
    model_id: str
    photos: int
    ranked: list[Ranked]
    latency: Latency

    def recall(self, k: int) -> float:
        return recall(self.ranked, k)

    @property
    def mrr(self) -> float:
        return mrr(self.ranked)


def rank_captions(lib: picsearch.Library, wanted: list[Caption] | None = None) -> list[Ranked]:
    """Search every caption over the whole library; the rank of the caption's own photo."""
    if wanted is None:
        wanted = [Caption(p, t, "") for p, texts in SAMPLE_CAPTIONS.items() for t in texts]
    ranked = []
    for caption in wanted:
        photo = caption.photo
        hits = lib.search(caption.text, k=len(lib))
        scores = {Path(h.path).stem: h.score for h in hits}
        own = scores.get(photo, float("-inf"))
        # Ties count against the photo: an encoder that scores everything alike
        # must not earn recall from the order photos were indexed in.
        rank = 1 + sum(score >= own for name, score in scores.items() if name != photo)
        top = Path(hits[0].path).stem
        ranked.append(Ranked(photo, caption.text, rank, top, hits[0].score, own, caption.half))
    return ranked


def best_scores(lib: picsearch.Library, queries: list[str]) -> list[float]:
    """The score of each query's best hit."""
    return [lib.search(query, k=1)[0].score for query in queries]


def fit_cutoff(own_scores: list[float]) -> float:
    """The highest cutoff that hides at most MAX_HIDDEN of these captions' own photos."""
    ordered = sorted(own_scores)
    allowed = int(MAX_HIDDEN * len(ordered))
    return float(ordered[allowed]) - 1e-6


@dataclass
class LevelResult:
    """One model at one --concepts level, each figure by half."""

    model: str
    level: str
    ranked: list[Ranked]
    concept_map: dict[str, float]
    nonsense_best: dict[str, list[float]]
    images_per_s: float
    stored_cutoff: float | None
    fitted_cutoff: float = field(init=False)

    def __post_init__(self) -> None:
        self.fitted_cutoff = fit_cutoff([r.own_score for r in self.half("tuning")])

    def half(self, half: str) -> list[Ranked]:
        return [r for r in self.ranked if r.half == half]

    def cutoff_figures(self, cutoff: float | None, half: str) -> tuple[float, float]:
        """(share of nonsense queries answered "no good match", share of captions hidden)."""
        if cutoff is None:
            return 0.0, 0.0
        refused = np.mean([s < cutoff for s in self.nonsense_best[half]])
        hidden = np.mean([r.own_score < cutoff for r in self.half(half)])
        return float(refused), float(hidden)


def concept_map(lib: picsearch.Library, queries: dict) -> float:
    from concepts import library_rankings, map_by_group  # beside this script

    if not queries:
        return float("nan")
    return map_by_group(library_rankings(lib, queries), queries)["all"]


def evaluate_level(model: str, level: str, folders, tmp: Path) -> LevelResult:
    samples, concept_folder, concept_queries = folders
    photos, seconds = 0, 0.0
    with picsearch.open(tmp / f"{model}-{level}-samples.db", model=model) as lib:
        log(f"{model} at --concepts {level}: indexing the captioned photos...")
        summary = lib.index(samples, concepts=level)
        photos, seconds = photos + summary.added, seconds + summary.seconds
        ranked = rank_captions(lib, captions())
        sets = nonsense()
        refused = {half: best_scores(lib, sets[half]) for half in HALVES}
        cutoff = weak_cutoff_of(lib.encoder)
    with picsearch.open(tmp / f"{model}-{level}-concepts.db", model=model) as lib:
        log(f"{model} at --concepts {level}: indexing the concept set...")
        summary = lib.index(concept_folder, concepts=level)
        photos, seconds = photos + summary.added, seconds + summary.seconds
        maps = {half: concept_map(lib, concept_queries[half]) for half in HALVES}
    return LevelResult(model, level, ranked, maps, refused, photos / seconds, cutoff)


def all_concept_queries():
    """The concept set's folder and its queries by half (the new ones included)."""
    from concepts import concept_set, grey_photos  # beside this script

    folder, queries = concept_set()
    grey = grey_photos(folder)
    names = {p.stem for p in folder.glob("*.jpg")}
    for query, (group, relevant) in quality_sets()["new_concept_queries"].items():
        wanted = grey if relevant == ["@grey"] else set(relevant) & names
        queries[query] = (group, wanted)
    return folder, split_concept_queries(queries)


def timed_ms(call: Callable[[str], object], query: str) -> float:
    started = time.perf_counter()
    call(query)
    return 1000 * (time.perf_counter() - started)


def measure_latency(lib: picsearch.Library, count: int, k: int) -> Latency:
    """End-to-end searches and bare text encodings of the same queries, alternated."""
    captions = [c for captions in SAMPLE_CAPTIONS.values() for c in captions]
    queries = [captions[i % len(captions)] for i in range(count)]
    encoder = lib.encoder

    def search(query: str) -> object:
        return lib.search(query, k=k)

    def encode(query: str) -> object:
        return encoder.embed_texts([query])

    for query in queries[:WARM_UP]:
        search(query)
        encode(query)
    pairs = [(timed_ms(search, q), timed_ms(encode, q)) for q in queries]
    search_ms, encoder_ms = (np.array(column) for column in zip(*pairs, strict=True))
    return Latency(search_ms, encoder_ms)


def evaluate(model: str, folder: Path, args: argparse.Namespace) -> ModelResult:
    """Text-query latency (and all captions ranked) on a fresh library of the samples."""
    with tempfile.TemporaryDirectory(prefix="picsearch-quality-") as tmp:
        with picsearch.open(Path(tmp) / "library.db", model=model) as lib:
            log(f"{model}: indexing {folder} for the latency run...")
            summary = lib.index(folder)
            if summary.skipped:
                raise RuntimeError(f"{model}: skipped {summary.skipped}")
            ranked = rank_captions(lib)
            log(f"{model}: timing {args.queries} text queries...")
            latency = measure_latency(lib, args.queries, args.k)
            return ModelResult(model, lib.encoder.model_id, len(lib), ranked, latency)


# ----------------------------------------------------------------- printing


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {i for i, h in enumerate(header) if h in ("model", "photo", "caption", "top-1")}
    line = "  ".join(f"{{:{'<' if i in left else '>'}{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def print_levels(results: list[LevelResult]) -> None:
    print("\n## quality by half (tuning: settings chosen on it; held-out: never tuned on)")
    rows = []
    for r in results:
        for half in HALVES:
            ranked = r.half(half)
            rows.append(
                [
                    r.model,
                    r.level,
                    half,
                    str(len(ranked)),
                    f"{recall(ranked, 1):.3f}",
                    f"{recall(ranked, 5):.3f}",
                    f"{mrr(ranked):.3f}",
                    f"{r.concept_map[half]:.3f}",
                    f"{r.images_per_s:.1f}",
                ]
            )
    header = ["model", "level", "half", "captions", "recall@1", "recall@5", "MRR"]
    print_table([*header, "concept mAP", "index images/s"], rows)


def print_cutoffs(results: list[LevelResult]) -> None:
    print(
        "\n## weak-match cutoff: nonsense queries answered 'no good match' (best hit under"
        f" it) and real captions whose own photo it hides (target: >= 0.90 and <= {MAX_HIDDEN})"
    )
    rows = []
    for r in results:
        cutoffs = [("stored", r.stored_cutoff), ("fitted on tuning", r.fitted_cutoff)]
        for name, cutoff in cutoffs:
            for half in HALVES:
                refused, hidden = r.cutoff_figures(cutoff, half)
                shown = "none" if cutoff is None else f"{cutoff:.4f}"
                rows.append(
                    [r.model, r.level, name, shown, half, f"{refused:.2f}", f"{hidden:.2f}"]
                )
    header = ["model", "level", "cutoff", "value", "half", "no good match", "captions hidden"]
    print_table(header, rows)


def print_latency(results: list[ModelResult], queries: int, k: int) -> None:
    print(f"\n## text-query latency, ms ({queries} queries after {WARM_UP} warm-up, k={k})")
    rows = []
    for r in results:
        search, alone = r.latency.search_ms, r.latency.encoder_ms
        p50s, p99s = np.percentile(search, [50, 99])
        p50e, p99e = np.percentile(alone, [50, 99])
        rows.append(
            [
                r.model,
                str(r.photos),
                f"{p50s:.2f}",
                f"{p99s:.2f}",
                f"{p50e:.2f}",
                f"{p99e:.2f}",
                f"{p50s / p50e:.2f}x",
            ]
        )
    print_table(
        [
            "model",
            "items",
            "search p50",
            "search p99",
            "encoder p50",
            "encoder p99",
            "search/encoder p50",
        ],
        rows,
    )


def print_captions(result: LevelResult) -> None:
    print(f"\n## {result.model} at --concepts {result.level}: per caption")
    rows = [
        [r.half, r.photo, r.caption, str(r.rank), r.top, f"{r.own_score:.3f}"]
        for r in sorted(result.ranked, key=lambda r: (r.half, -r.rank, r.photo))
    ]
    print_table(["half", "photo", "caption", "rank", "top-1", "own score"], rows)


# ----------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", action="append", help="model spec; repeat to compare (default: default)"
    )
    parser.add_argument(
        "--levels", nargs="+", default=["off", "fast", "full"], help="--concepts levels"
    )
    parser.add_argument("--queries", type=int, default=200, help="timed text queries")
    parser.add_argument("-k", type=int, default=10, help="results per timed query")
    parser.add_argument("--verbose", action="store_true", help="print a per-caption table")
    args = parser.parse_args(argv)
    args.models = args.model or ["default"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples = sample_photos()
    concept_folder, concept_queries = all_concept_queries()
    folders = (samples, concept_folder, concept_queries)
    levels = []
    with tempfile.TemporaryDirectory(prefix="picsearch-quality-") as tmp:
        for model in args.models:
            for level in args.levels:
                levels.append(evaluate_level(model, level, folders, Path(tmp)))
    latency = [evaluate(model, samples, args) for model in args.models]
    print(
        "# quality benchmark: "
        + ", ".join(f"{r.model} ({r.model_id})" for r in latency)
        + f"; PICSEARCH_THREADS={os.environ.get('PICSEARCH_THREADS', '-')}"
    )
    counts = {h: len(concept_queries[h]) for h in HALVES}
    print(f"# concept queries per half: {counts}; nonsense: 15 + 15")
    print_levels(levels)
    print_cutoffs(levels)
    print_latency(latency, args.queries, args.k)
    if args.verbose:
        for result in levels:
            print_captions(result)


if __name__ == "__main__":
    main()
