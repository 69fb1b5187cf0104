"""TensorFlow Lite searchers in the real Task Library, against picsearch's own searcher.

    python benchmarks/tflite.py [--sizes 10000 100000] [--queries 100] [--skip-default]

Needs the converter venvs (``make tflite-env``). In one run it prints:

1. The default model end to end: a library of the sample photos and edited copies,
   exported as ``.tflite`` files and as a ``.searcher``; both files' sizes, the export
   time, and the Task Library's top-5 against the ``.searcher``'s for the sample
   captions (text) and the photos themselves (image), with open time and per-query
   latency of each, measured on the same queries.
2. The index at 10,000 and 100,000 items: synthetic joint vectors made as the default
   model makes a photo's (a weighted mean of ImageNet class-name embeddings, normalised),
   searched by the Task Library through the default text searcher with the index file
   swapped in (``SearchOptions.index_file_name``), for several ScaNN settings: index
   bytes per item, open time, per-query latency and recall@10 against exact search;
   beside picsearch's own ANN index (``ann.build(..., "auto")``, what a library and a
   ``.searcher`` use) on the same query vectors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import picsearch
from picsearch import ann
from picsearch.encoders import effnet, load_encoder
from picsearch.samples import SAMPLE_CAPTIONS, write_sample_photos
from picsearch.searcher import ImageSearcher, TextSearcher, export_searcher
from picsearch.tflite import ScannOptions, export_tflite, find_env, task_library_search
from picsearch.tflite.export import write_index_file


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1e3:.1f} ms"


def recall(theirs: list[list[int]], ours: list[list[int]]) -> float:
    found = sum(len(set(t) & set(o)) for t, o in zip(theirs, ours, strict=True))
    return found / max(sum(len(o) for o in ours), 1)


def ids_of(answer: dict) -> list[list[int]]:
    return [[json.loads(n["metadata"])["id"] for n in found] for found in answer["results"]]


def default_library(folder: Path) -> picsearch.Library:
    photos = folder / "photos"
    for path in write_sample_photos(photos):
        image = ImageOps.mirror(Image.open(path).convert("RGB"))
        image.save(path.with_name(path.stem + "-flip.jpg"), quality=85)
    library = picsearch.open(folder / "default.db")
    library.index([photos], concepts="off")
    return library


def end_to_end(folder: Path, env, reuse: bool) -> picsearch.Library:
    """The default model's export, checked; ``reuse``: the files an earlier run left in
    ``folder`` (``--work``) are searched again instead of exported again."""
    library = default_library(folder) if not reuse else picsearch.open(folder / "default.db")
    print(f"\n## Default model end to end ({len(library)} photos)\n")
    if not reuse or not (folder / "tflite" / "image_searcher.tflite").exists():
        started = time.perf_counter()
        report = export_tflite(library, folder / "tflite", env=env)
        log(f"exported: {report}")
        print(f"export to .tflite: {time.perf_counter() - started:.0f} s (both files, 2 cores)")
        export_searcher(library, folder / "default.searcher")
    sizes = {name: (folder / "tflite" / name).stat().st_size for name in report_files()}
    sizes[".searcher"] = (folder / "default.searcher").stat().st_size
    print("| file | bytes | per item |\n|---|---|---|")
    for name, size in sizes.items():
        print(f"| {name} | {size / 1e6:.1f} MB | {size / len(library) / 1e3:.1f} kB |")
    captions = [c for cs in SAMPLE_CAPTIONS.values() for c in cs]
    photos = sorted(str(p) for p in (folder / "photos").glob("*.jpg"))
    print(
        "\n| queries | Task Library open | .searcher open | Task Library query | .searcher "
        "query | recall@5 vs .searcher | own photo first |\n" + "|---" * 7 + "|"
    )
    squares = square_copies(photos, folder / "squares")
    for kind, queries, shown in (
        ("text", captions, "text"),
        ("image", photos, "image"),
        ("image", squares, "image, centre crop as picsearch's"),
    ):
        compare(kind, queries, folder, env, library, shown)
    return library


def square_copies(photos: list[str], folder: Path) -> list[str]:
    """What picsearch's preprocessing keeps of each photo: the centre square of 224/256 of
    the short side. The Task Library resizes a photo whole, so this crop, made by the app,
    feeds it the same pixels."""
    spec = effnet.query_preprocess()
    keep = spec["crop"][0] / spec["resize_short"]
    folder.mkdir(exist_ok=True)
    out = []
    for path in photos:
        image = Image.open(path).convert("RGB")
        side = round(min(image.size) * keep)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        target = folder / Path(path).name
        image.crop((left, top, left + side, top + side)).save(target, quality=95)
        out.append(str(target))
    return out


def current_index(library, kind: str, folder: Path, env) -> Path:
    """An index file of the library's vectors with today's default options, searched in
    place of the one inside the exported file (which a --reuse run may have built with
    other defaults)."""
    space = "visual" if kind == "image" and "visual" in library.space_names() else "joint"
    ids, vectors = library.vectors(space)
    path = folder / f"current-{kind}.ldb"
    checked = write_index_file(vectors, path, items=[{"id": int(i)} for i in ids], env=env)
    log(f"{kind} index: {checked}")
    return path


def report_files() -> list[str]:
    return ["text_searcher.tflite", "image_searcher.tflite"]


def compare(kind: str, queries: list[str], folder: Path, env, library, shown: str) -> None:
    index = current_index(library, kind, folder, env)
    answer = task_library_search(folder / "tflite" / f"{kind}_searcher.tflite", queries,
                                 kind=kind, k=5, index=index, env=env)  # fmt: skip
    started = time.perf_counter()
    cls = TextSearcher if kind == "text" else ImageSearcher
    ours_searcher = cls.create_from_file(folder / "default.searcher")
    ours_searcher.search(queries[0], k=5)  # the first query loads the encoder
    opened = time.perf_counter() - started
    ours, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        found = ours_searcher.search(query, k=5).nearest_neighbors
        seconds.append(time.perf_counter() - started)
        ours.append([n.id for n in found])
    theirs = ids_of(answer)
    first = ""
    if kind == "image":
        by_name = {Path(library.get(int(i)).path).name: int(i) for i in library.ids()}
        hits = sum(t[:1] == [by_name[Path(q).name]] for t, q in zip(theirs, queries, strict=True))
        first = f"{hits}/{len(queries)}"
    print(f"| {len(queries)} {shown} | {answer['open_seconds'] * 1e3:.0f} ms | "
          f"{opened * 1e3:.0f} ms | {ms(answer['seconds'])} | {ms(seconds)} | "
          f"{recall(theirs, ours):.3f} | {first} |")  # fmt: skip


def synthetic_vectors(count: int, bank: np.ndarray, seed: int = 0) -> np.ndarray:
    """Photos as the default model embeds them: a Dirichlet-weighted mean of 5 class
    embeddings, normalised."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(bank), (count, 5))
    weights = rng.dirichlet(np.full(5, 0.5), count).astype(np.float32)
    vectors = np.einsum("nk,nkd->nd", weights, bank[classes])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def query_texts(count: int, seed: int = 1) -> list[str]:
    from picsearch.encoders.imagenet import class_names

    names = class_names()
    rng = np.random.default_rng(seed)
    templates = ["a photo of a {}", "a {} outdoors", "my {}", "a close-up of a {}"]
    return [rng.choice(templates).format(names[int(c)][0]) for c in rng.integers(0, 1000, count)]


def settings_for(count: int) -> dict[str, ScannOptions]:
    leaves = max(1, round(count**0.5))
    return {
        "default": ScannOptions(),
        "search 5%": ScannOptions(partitions_to_search=max(1, leaves // 20)),
        "search 20%": ScannOptions(partitions_to_search=max(1, leaves // 5)),
        "all leaves": ScannOptions(partitions_to_search=leaves),
        "PQ, 2 dims/block": ScannOptions(product_quantization=True),
        "PQ, 2 dims/block, 20%": ScannOptions(
            product_quantization=True, partitions_to_search=max(1, leaves // 5)
        ),
    }


def index_part(folder: Path, sizes: list[int], queries: int, env) -> None:
    encoder = load_encoder("default")
    bank = encoder.class_bank()  # type: ignore[attr-defined]
    texts = query_texts(queries)
    query_vectors = encoder.embed_texts(texts)
    ours_file = folder / "default.searcher"
    embedder = TextSearcher.create_from_file(ours_file)
    text_model = folder / "tflite" / "text_searcher.tflite"
    for count in sizes:
        vectors = synthetic_vectors(count, bank)
        exact = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :10].tolist()
        items = [{"id": i, "path": f"/photos/{i:06d}.jpg", "size": 2_000_000} for i in range(count)]
        print(f"\n## Index of {count:,} items (synthetic default-model vectors, "
              f"{queries} text queries)\n")  # fmt: skip
        print("| index | partitions (searched) | bytes per item | open | query | recall@10 |\n"
              "|---|---|---|---|---|---|")  # fmt: skip
        for name, options in settings_for(count).items():
            index_file = folder / f"index-{count}.ldb"
            checked = write_index_file(vectors, index_file, items=items, options=options, env=env)
            answer = task_library_search(text_model, texts, kind="text", k=10,
                                         index=index_file, env=env)  # fmt: skip
            print(f"| Task Library, {name} | {checked.partitions} ({checked.partitions_to_search})"
                  f" | {index_file.stat().st_size / count:.0f} B | "
                  f"{answer['open_seconds'] * 1e3:.0f} ms | {ms(answer['seconds'])} | "
                  f"{recall(ids_of(answer), exact):.3f} |", flush=True)  # fmt: skip
        ours_index(vectors, texts, query_vectors, exact, embedder, folder, count)


def ours_index(vectors, texts, query_vectors, exact, embedder, folder, count) -> None:
    """picsearch's own index on the same vectors: the text embedded by the .searcher's
    encoder, then the index searched, per query."""
    started = time.perf_counter()
    index = ann.build(vectors, np.arange(len(vectors), dtype=np.int64), "auto")
    built = time.perf_counter() - started
    index.save(folder / f"ours-{count}")
    size = sum(p.stat().st_size for p in (folder / f"ours-{count}").rglob("*") if p.is_file())
    started = time.perf_counter()
    index = ann.load(folder / f"ours-{count}")
    opened = time.perf_counter() - started
    found, seconds = [], []
    for text in texts:
        started = time.perf_counter()
        vector = embedder.embed(text)
        _, ids = index.search(vector[None, :], k=10)
        seconds.append(time.perf_counter() - started)
        found.append([int(i) for i in ids[0]])
    print(f"| picsearch .searcher index ({index.backend}, built in {built:.0f} s) | | "
          f"{size / count:.0f} B | {opened * 1e3:.0f} ms | {ms(seconds)} | "
          f"{recall(found, exact):.3f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="search the --work files again")
    args = parser.parse_args()
    env = find_env()
    with tempfile.TemporaryDirectory(prefix="picsearch-bench-tflite-") as tmp:
        folder = args.work or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        end_to_end(folder, env, args.reuse)
        index_part(folder, args.sizes, args.queries, env)


if __name__ == "__main__":
    main()
