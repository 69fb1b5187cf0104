"""Text-to-image search quality and text-query latency on the captioned sample photos.

    python benchmarks/quality.py [--model default] [--model tiny ...] [--verbose]

For each model it indexes the sample photos (``picsearch.samples``) into a fresh
library and searches every caption of ``SAMPLE_CAPTIONS``: the caption's own photo
should rank first. It prints recall@1, recall@5 and MRR, then the latency of text
queries, end to end through ``lib.search`` and for the text encoder alone (p50/p99
over ``--queries`` queries after a warm-up). ``--verbose`` adds a per-caption table.
Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from index import sample_photos  # benchmarks/index.py, beside this script

import picsearch
from picsearch.samples import SAMPLE_CAPTIONS

WARM_UP = 20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Ranked:
    photo: str
    caption: str
    rank: int  # 1 = the caption's own photo scored above every other photo
    top: str
    top_score: float


@dataclass
class Latency:
    search_ms: np.ndarray
    encoder_ms: np.ndarray


@dataclass
class ModelResult:
    model: str
    model_id: str
    photos: int
    ranked: list[Ranked]
    latency: Latency

    def recall(self, k: int) -> float:
        return float(np.mean([r.rank <= k for r in self.ranked]))

    @property
    def mrr(self) -> float:
        return float(np.mean([1.0 / r.rank for r in self.ranked]))


def rank_captions(lib: picsearch.Library) -> list[Ranked]:
    """Search every caption over the whole library; the rank of the caption's own photo."""
    ranked = []
    for photo, captions in SAMPLE_CAPTIONS.items():
        for caption in captions:
            hits = lib.search(caption, k=len(lib))
            scores = {Path(h.path).stem: h.score for h in hits}
            own = scores.get(photo, float("-inf"))
            # Ties count against the photo: an encoder that scores everything alike
            # must not earn recall from the order photos were indexed in.
            rank = 1 + sum(score >= own for name, score in scores.items() if name != photo)
            ranked.append(Ranked(photo, caption, rank, Path(hits[0].path).stem, hits[0].score))
    return ranked


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
    with tempfile.TemporaryDirectory(prefix="picsearch-quality-") as tmp:
        with picsearch.open(Path(tmp) / "library.db", model=model) as lib:
            log(f"{model}: indexing {folder}...")
            summary = lib.index(folder)
            if summary.skipped:
                raise RuntimeError(f"{model}: skipped {summary.skipped}")
            log(f"{model}: searching {sum(map(len, SAMPLE_CAPTIONS.values()))} captions...")
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


def print_quality(results: list[ModelResult]) -> None:
    print("\n## text-to-image retrieval on the captioned sample set (own photo should rank 1st)")
    rows = [
        [
            r.model,
            str(r.photos),
            str(len(r.ranked)),
            f"{r.recall(1):.3f}",
            f"{r.recall(5):.3f}",
            f"{r.mrr:.3f}",
        ]
        for r in results
    ]
    print_table(["model", "photos", "captions", "recall@1", "recall@5", "MRR"], rows)


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


def print_captions(result: ModelResult) -> None:
    print(f"\n## {result.model}: per caption")
    rows = [
        [r.photo, r.caption, str(r.rank), r.top, f"{r.top_score:.3f}"]
        for r in sorted(result.ranked, key=lambda r: (-r.rank, r.photo))
    ]
    print_table(["photo", "caption", "rank", "top-1", "score"], rows)


# ----------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", action="append", help="model spec; repeat to compare (default: default)"
    )
    parser.add_argument("--queries", type=int, default=200, help="timed text queries")
    parser.add_argument("-k", type=int, default=10, help="results per timed query")
    parser.add_argument("--verbose", action="store_true", help="print a per-caption table")
    args = parser.parse_args(argv)
    args.models = args.model or ["default"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    folder = sample_photos()
    results = [evaluate(model, folder, args) for model in args.models]
    print(
        "# quality benchmark: "
        + ", ".join(f"{r.model} ({r.model_id})" for r in results)
        + f"; PICSEARCH_THREADS={os.environ.get('PICSEARCH_THREADS', '-')}"
    )
    print_quality(results)
    print_latency(results, args.queries, args.k)
    if args.verbose:
        for result in results:
            print_captions(result)


if __name__ == "__main__":
    main()
