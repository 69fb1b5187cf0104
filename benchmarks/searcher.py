"""One-file searcher: size, cold start, query latency and agreement with its library.

    python benchmarks/searcher.py [--items 50000] [--queries 300]

Builds a library with the default model: the sample photos and edited copies of
them, indexed for real, padded with synthetic items (noisy copies of the real
vectors) to ``--items`` so the ANN index is the one a large collection gets.
Then, in one run, it exports a float and an int8 searcher and prints:

- the file size, in total and per item;
- cold start: a fresh process importing picsearch, opening the file and answering
  one text query (median of 3), beside the same for the library;
- text-query latency p50/p99 end to end, against the text encoder alone plus the
  raw index search alone (interleaved, same queries), and the ratio;
- agreement: the float searcher's top-10 against the library's (same ids in the
  same order) and the int8 searcher's recall@10 against the library.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

import picsearch
from picsearch import SearcherOptions, TextSearcher
from picsearch.samples import SAMPLE_CAPTIONS, write_sample_photos
from picsearch.searcher.check import probe_texts
from picsearch.searcher.export import QUANTIZE, export_searcher


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def edited_copies(folder: Path) -> None:
    """Ten edits of each sample photo, so the real part of the library is not tiny."""
    for path in sorted(folder.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        edits = {
            "flip": ImageOps.mirror(image),
            "grey": ImageOps.grayscale(image).convert("RGB"),
            "crop": image.crop((w // 10, h // 10, w - w // 10, h - h // 10)),
            "small": image.resize((w // 2, h // 2)),
            "bright": ImageEnhance.Brightness(image).enhance(1.4),
            "dark": ImageEnhance.Brightness(image).enhance(0.6),
            "rot": image.rotate(90, expand=True),
            "tilt": image.rotate(8),
            "colour": ImageEnhance.Color(image).enhance(1.8),
            "contrast": ImageEnhance.Contrast(image).enhance(0.6),
        }
        for name, edited in edits.items():
            edited.save(folder / "edits" / f"{path.stem}-{name}.jpg", quality=85)


def pad_with_synthetic(library: picsearch.Library, total: int, seed: int = 0) -> None:
    """Noisy copies of the real vectors as extra items (their paths do not exist)."""
    catalog = library._catalog
    spaces = {s: library.vectors(s) for s in ("joint", "visual")}
    real = len(spaces["joint"][0])
    rng = np.random.default_rng(seed)
    with catalog.transaction():
        for n in range(total - real):
            source = rng.integers(real)
            vectors = {}
            for space, (_, matrix) in spaces.items():
                v = matrix[source] + rng.normal(0, 0.6 / np.sqrt(matrix.shape[1]), matrix.shape[1])
                vectors[space] = (v / np.linalg.norm(v)).astype(np.float32)
            catalog.upsert(
                path_bytes=f"/synthetic/{n:07d}.jpg".encode(),
                size=1000,
                mtime_ns=0,
                digest=f"synthetic{n}",
                width=640,
                height=480,
                joint=vectors["joint"],
                visual=vectors["visual"],
            )
    for space in library._space_names():
        library._space(space).maintain(catalog)


def cold_start(code: str, runs: int = 3) -> float:
    """Median seconds for a fresh interpreter to run ``code`` (import, open, one query)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def latency(searcher: TextSearcher, queries: list[str]) -> dict[str, np.ndarray]:
    """Per query, interleaved: end to end, text encoder alone, raw index search alone."""
    for text in queries[:20]:
        searcher.search(text)
    timing = {"end_to_end": [], "encoder": [], "index": []}
    k = searcher.options.max_results
    for text in queries:
        t0 = time.perf_counter()
        searcher.search(text)
        t1 = time.perf_counter()
        vector = searcher.embed(text)
        t2 = time.perf_counter()
        searcher._index.search(vector[None], k)
        t3 = time.perf_counter()
        timing["end_to_end"].append(t1 - t0)
        timing["encoder"].append(t2 - t1)
        timing["index"].append(t3 - t2)
    return {name: np.array(values) * 1000 for name, values in timing.items()}


def agreement(library, searcher: TextSearcher, queries: list[str]) -> tuple[float, float]:
    same, recall = 0, []
    for text in queries:
        got = searcher.search(text, k=10).ids
        want = [h.id for h in library.search(text, k=10)]
        same += got == want
        recall.append(len(set(got) & set(want)) / len(want))
    return same / len(queries), float(np.mean(recall))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("PICSEARCH_THREADS", "1")  # one thread: latency, not parallelism
    work = Path(tempfile.mkdtemp(prefix="searcher-bench-"))
    photos = work / "photos"
    write_sample_photos(photos)
    (photos / "edits").mkdir()
    edited_copies(photos)
    library = picsearch.open(work / "lib.db")
    log(f"indexing {sum(1 for _ in photos.rglob('*.jpg'))} photos")
    library.index(photos)
    log(f"padding to {args.items} items and building the index")
    pad_with_synthetic(library, args.items)
    for space, index in library.info().indexes.items():
        log(f"  {space}: {index['backend']} ({index['chosen_by']})")

    captions = [c for cs in SAMPLE_CAPTIONS.values() for c in cs]
    queries = (captions + probe_texts(args.queries))[: args.queries]
    files = {}
    for quantize in QUANTIZE:
        report = export_searcher(library, work / f"photos-{quantize}.searcher", quantize=quantize)
        files[quantize] = report
        log(str(report))

    searchers = {
        q: TextSearcher.create_from_file(files[q].path, SearcherOptions(max_results=10))
        for q in QUANTIZE
    }
    timing = latency(searchers["none"], queries)
    agree = {q: agreement(library, searchers[q], queries) for q in QUANTIZE}

    open_searcher = (
        "from picsearch import TextSearcher\n"
        f"TextSearcher.create_from_file({files['none'].path!r}).search('a cat')"
    )
    open_library = (
        f"import picsearch\npicsearch.open({str(work / 'lib.db')!r}, create=False).search('a cat')"
    )
    cold = {"searcher": cold_start(open_searcher), "library": cold_start(open_library)}

    print(f"\nOne-file searcher, default model, {args.items:,} items, 1 thread\n")
    print("| --quantize | " + " | ".join(QUANTIZE) + " |")
    print("|---|" + "---:|" * len(QUANTIZE))
    rows = {
        "file size (MB)": [files[q].bytes / 1e6 for q in QUANTIZE],
        "  encoders (MB)": [files[q].encoder_bytes / 1e6 for q in QUANTIZE],
        "  index (MB)": [files[q].index_bytes / 1e6 for q in QUANTIZE],
        "bytes per item, whole file": [files[q].bytes / args.items for q in QUANTIZE],
        "bytes per item, index": [files[q].index_bytes / args.items for q in QUANTIZE],
    }
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(f"{v:,.1f}" for v in values) + " |")
    print(
        "| text: same top-10 as the library, same order | "
        + " | ".join(f"{agree[q][0]:.1%}" for q in QUANTIZE)
        + " |"
    )
    print(
        "| text: recall@10 against the library | "
        + " | ".join(f"{agree[q][1]:.3f}" for q in QUANTIZE)
        + " |"
    )
    print(
        "| image: recall@10 against the library (20 photos) | "
        + " | ".join(f"{files[q].image_recall_at_10:.3f}" for q in QUANTIZE)
        + " |"
    )

    e2e, enc, idx = timing["end_to_end"], timing["encoder"], timing["index"]
    parts = enc + idx
    print(f"\nText-query latency over {len(queries)} queries (ms)\n")
    print("| | p50 | p99 |")
    print("|---|---:|---:|")
    for label, values in (
        ("searcher, end to end", e2e),
        ("text encoder alone", enc),
        ("raw index search alone", idx),
        ("encoder + index", parts),
    ):
        print(f"| {label} | {np.percentile(values, 50):.2f} | {np.percentile(values, 99):.2f} |")
    ratio50 = np.percentile(e2e, 50) / np.percentile(parts, 50)
    ratio99 = np.percentile(e2e, 99) / np.percentile(parts, 99)
    print(f"| **end to end / (encoder + index)** | **{ratio50:.3f}** | **{ratio99:.3f}** |")

    print("\nCold start: new process, import, open, first text query (median of 3)\n")
    print(f"- searcher file: {cold['searcher']:.2f} s")
    print(f"- library (.db + index folder): {cold['library']:.2f} s")
    result = {
        "items": args.items,
        "bytes": {q: files[q].bytes for q in files},
        "ratio_p50": ratio50,
        "ratio_p99": ratio99,
        "agreement": agree,
        "cold": cold,
    }
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main()
