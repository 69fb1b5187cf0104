"""Scale-out on Spark: images/s of ``embed`` on Spark local[1] vs local[2] vs one machine.

    python benchmarks/spark.py [--count 2000] [--rounds 2] [--model default] [--vectors 50000]

``--count`` generated photo-like JPEGs (512x384) are written once under
``benchmarks/data/spark-COUNT-PER_SHARD/``, both as webdataset tar shards of
``--per-shard`` samples (``key.jpg`` + ``key.txt``) and as a plain folder.
With the model already exported, each round times, one after the other:

- the single-machine pipeline: ``Library.index`` on the folder (decoding
  threads + ONNX Runtime on every core, concept bank off, as on Spark), into a
  fresh library;
- ``embed --engine local`` on the tar shards (the Spark tasks, in threads);
- ``embed --engine spark`` on the tar shards, on a fresh ``local[1]`` session,
  then a fresh ``local[2]`` one (one task per core, one inference thread per
  task). A small first job starts the Python workers and loads the model in
  each; it and the session start are printed apart.

The table keeps each configuration's best round (the machine is shared: the
best round is the one least disturbed) and lists every round. Then, unless
``--vectors 0``, the index build: ``--vectors`` vectors per space shaped like
the default model's (384-d joint, clustered; 1280-d visual, the default
model's Fashion-MNIST embeddings when ``benchmarks/ann.py`` cached them),
written as shards and built into a library with ``build --engine spark`` on
local[2] and with the local engine: seconds per phase, bytes per vector and
recall. Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import picsearch
from picsearch.encoders import load_encoder
from picsearch.spark import build, embed, shards
from picsearch.spark.session import spark_session
from picsearch.spark.sources import item_id

DATA = Path(__file__).resolve().parent / "data"
TARGET = 1.7


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- data
def photo(seed: int) -> bytes:
    """A 512x384 JPEG: smooth colour fields, soft blobs and noise."""
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
    field = field.resize((512, 384), Image.Resampling.BICUBIC)
    blobs = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    blobs = blobs.resize((512, 384), Image.Resampling.BILINEAR)
    pixels = np.asarray(Image.blend(field, blobs, 0.4), dtype=np.int16)
    pixels += rng.normal(0, 4, pixels.shape).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def dataset(count: int, per_shard: int) -> tuple[Path, list[Path]]:
    """The folder and the tar shards of ``count`` photos (written once)."""
    root = DATA / f"spark-{count}-{per_shard}"
    folder, tars = root / "folder", root / "tars"
    done = root / ".complete"
    if not done.exists():
        log(f"writing {count} photos under {root} (once)")
        folder.mkdir(parents=True, exist_ok=True)
        tars.mkdir(exist_ok=True)
        for start in range(0, count, per_shard):
            with tarfile.open(tars / f"shard-{start // per_shard:04d}.tar", "w") as tar:
                for seed in range(start, min(start + per_shard, count)):
                    data = photo(seed)
                    (folder / f"{seed:06d}.jpg").write_bytes(data)
                    for name, body in ((f"{seed:06d}.jpg", data), (f"{seed:06d}.txt", b"a photo")):
                        info = tarfile.TarInfo(name)
                        info.size = len(body)
                        tar.addfile(info, io.BytesIO(body))
        done.touch()
    return folder, sorted(tars.glob("shard-*.tar"))


# ----------------------------------------------------------------- embedding
SINGLE = "single machine: `picsearch index` (Library.index)"
LOCAL = "`embed --engine local`"
SPARK = "`embed --engine spark --master {}`"


@dataclass
class Runs:
    """Images/s of each round of one configuration, and what to say about it."""

    images: int = 0
    rates: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> float:
        return max(self.rates)


def time_embedding(args: argparse.Namespace, work: Path) -> dict[str, Runs]:
    """Every configuration once per round, in turn, so load on a shared machine hits all."""
    folder, tars = dataset(args.count, args.per_shard)
    warm_up = tars[0].parent.parent / "warm-up"
    if not warm_up.exists():
        warm_up_shards(tars[0], warm_up)
    encoder = load_encoder(args.model)
    getattr(encoder, "prepare_images", lambda: None)()  # a first-use export is not timed
    runs = {
        name: Runs() for name in (SINGLE, LOCAL, SPARK.format("local[1]"), SPARK.format("local[2]"))
    }
    for round_ in range(args.rounds):
        out = work / f"round-{round_}"
        log(f"round {round_ + 1}/{args.rounds}: Library.index")
        with picsearch.open(out / "single.db", model=args.model) as library:
            # Concepts off here and in every embed below: the same work is compared.
            summary = library.index(folder, batch_size=args.batch_size, concepts="off")
        record(runs[SINGLE], summary.embedded, summary.seconds, "")
        log("embed --engine local")
        local = embed(
            tars, out / "emb-local", model=args.model, batch_size=args.batch_size, concepts="off"
        )
        per_image = sum(r.bytes for r in local.shards) / max(local.rows, 1)
        record(runs[LOCAL], local.embedded, local.seconds, f"{per_image:.0f} B/image in shards")
        for master in ("local[1]", "local[2]"):
            run_spark(args, master, tars, warm_up, out, runs[SPARK.format(master)])
    return runs


def record(runs: Runs, images: int, seconds: float, note: str) -> None:
    runs.images = images
    runs.rates.append(images / seconds)
    if note:
        runs.notes.append(note)


def run_spark(
    args: argparse.Namespace, master: str, tars: list[Path], warm_up: Path, out: Path, runs: Runs
) -> None:
    started = time.perf_counter()
    session = spark_session(master, log_level="error")
    boot = time.perf_counter() - started
    # A first small job starts the Python workers and loads the model in each.
    first = embed(
        sorted(warm_up.glob("*.tar")),
        out / f"warm-{master}",
        model=args.model,
        engine="spark",
        spark=session,
        concepts="off",
    )
    log(
        f"embed --engine spark --master {master} (session {boot:.1f} s, first job "
        f"{first.seconds:.1f} s)"
    )
    result = embed(
        tars,
        out / f"emb-{master}",
        model=args.model,
        engine="spark",
        spark=session,
        batch_size=args.batch_size,
        concepts="off",
    )
    session.stop()
    workers = len({r.pid for r in [*first.shards, *result.shards]})
    loads = sorted({r.encoder_loads for r in result.shards})
    record(
        runs,
        result.embedded,
        result.seconds,
        f"session {boot:.0f} s + first job {first.seconds:.0f} s apart, {workers} workers, "
        f"model loads per worker {loads}",
    )


def warm_up_shards(tar: Path, folder: Path) -> None:
    """Two small shards (16 photos each) from the first one: the warm-up job's input."""
    folder.mkdir(parents=True)
    with tarfile.open(tar) as source:
        jpegs = [m for m in source.getmembers() if m.name.endswith(".jpg")][:32]
        for part in (0, 1):
            with tarfile.open(folder / f"warm-{part}.tar", "w") as out:
                for member in jpegs[part * 16 : (part + 1) * 16]:
                    out.addfile(member, source.extractfile(member))


def print_embedding(runs: dict[str, Runs], rounds: int) -> None:
    single = runs[SINGLE].best
    print(f"\nEmbedding: best of {rounds} interleaved rounds (images/s of every round in brackets)")
    print("\n| run | images | images/s | × single machine | notes |")
    print("|---|---|---|---|---|")
    for name, run in runs.items():
        each = ", ".join(f"{rate:.1f}" for rate in run.rates)
        note = run.notes[-1] if run.notes else ""
        print(
            f"| {name} | {run.images} | {run.best:.1f} ({each}) | {run.best / single:.2f} "
            f"| {note} |"
        )
    one, two = runs[SPARK.format("local[1]")].best, runs[SPARK.format("local[2]")].best
    verdict = "met" if two / one >= TARGET else "NOT met"
    print(f"\nSpark local[2] / local[1]: {two / one:.2f}x (target >= {TARGET}x: {verdict})")
    print(
        f"Spark local[2] / single machine: {two / single:.2f}x "
        f"(Spark's overhead: {single / two:.2f}x the time)"
    )
    print(f"local engine / single machine: {runs[LOCAL].best / single:.2f}x")


# ----------------------------------------------------------------- index build
FASHION = DATA / "fashion-default-60000-1000.npy"  # cached by benchmarks/ann.py


def clustered(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Unit vectors around 1000 centres with anisotropic spread (as benchmarks/ann.py)."""
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    scales = rng.uniform(0.3, 1.0, (1000, 1)).astype(np.float32)
    pick = rng.integers(0, 1000, n)
    vectors = centres[pick] + scales[pick] * rng.standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def vectors_for(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """384-d joint vectors (clustered) and 1280-d visual ones: the default model's
    embeddings of Fashion-MNIST when benchmarks/ann.py cached them, else clustered."""
    rng = np.random.default_rng(seed)
    joint = clustered(rng, n, 384)
    if FASHION.exists() and n <= 60_000:
        visual = np.load(FASHION, mmap_mode="r")[:n].astype(np.float32)
        return {"joint": joint, "visual": visual}, "visual: Fashion-MNIST through the default model"
    return {"joint": joint, "visual": clustered(rng, n, 1280)}, "visual: clustered"


def synthetic_embeddings(out: Path, n: int, per_shard: int = 5000) -> str:
    """Embedding shards of n vectors per space, as ``embed`` writes them; returns the source."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dims = {"joint": 384, "visual": 1280}
    spaces, what = vectors_for(n)
    schema = shards.shard_schema(dims["joint"], dims["visual"])
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for unit, start in enumerate(range(0, n, per_shard)):
        rows = min(per_shard, n - start)
        columns = {
            "id": pa.array([item_id(unit, i) for i in range(rows)], pa.int64()),
            "uri": pa.array([f"synthetic/{unit}/{i}.jpg" for i in range(rows)]),
            "size": pa.array([1] * rows, pa.int64()),
            "mtime_ns": pa.array([0] * rows, pa.int64()),
            "hash": pa.array([f"{unit:08d}{i:024d}" for i in range(rows)]),
            "width": pa.array([1] * rows, pa.int32()),
            "height": pa.array([1] * rows, pa.int32()),
            "caption": pa.array([None] * rows, pa.string()),
            "metadata": pa.array(["{}"] * rows),
        }
        for space in dims:
            columns[space] = shards.vector_column(spaces[space][start : start + rows])
        name = f"shard-{unit:06d}.parquet"
        pq.write_table(pa.Table.from_pydict(columns, schema=schema), out / name)
        data = (out / name).read_bytes()
        entries.append(
            {
                "name": name,
                "unit": unit,
                "unit_key": str(unit),
                "source": "synthetic",
                "rows": rows,
                "skipped": [],
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
        )
    shards.write_manifest(
        str(out),
        {
            "model": "default",
            "model_id": load_encoder().model_id,
            "dim": 384,
            "visual_dim": 1280,
            "sources": ["synthetic"],
            "files_per_unit": per_shard,
            "rows": n,
            "skipped": 0,
            "shards": entries,
        },
    )
    return what


def time_index_build(args: argparse.Namespace, work: Path) -> None:
    emb = work / "synthetic"
    log(f"writing {args.vectors} vectors per space as shards")
    what = synthetic_embeddings(emb, args.vectors)
    shard_bytes = sum(p.stat().st_size for p in emb.glob("shard-*.parquet"))
    results = {}
    session = spark_session("local[2]", log_level="error")
    for engine in ("spark", "local"):
        log(f"build --engine {engine}")
        results[engine] = build(emb, work / f"{engine}.db", engine=engine, spark=session)
    session.stop()
    print(
        f"\nIndex build: {args.vectors} vectors per space (joint: clustered; {what}), "
        f"shards {shard_bytes / args.vectors:.0f} bytes per image (Parquet, 384 + 1280 float32)"
    )
    print(
        "\n| build | space | catalog s | train s | add s (parallel) | merge s | tune s "
        "| total s | bytes/vector | recall@10 | leaves searched / leaves |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for engine, summary in results.items():
        for space, info in summary.spaces.items():
            if "how" not in info:  # small enough for exact search: nothing to build
                print(
                    f"| {engine} | {space} | {summary.catalog_seconds:.1f} | exact search "
                    f"| | | | {summary.seconds:.1f} | | 1.000 | |"
                )
                continue
            print(
                f"| {engine} | {space} | {summary.catalog_seconds:.1f} | "
                f"{info['train_seconds']:.1f} | {info['add_seconds']:.1f} | "
                f"{info['merge_seconds']:.1f} | {info['tune_seconds']:.1f} | "
                f"{summary.seconds:.1f} | {info['bytes_per_vector']:.0f} | "
                f"{info['recall@10']:.3f} | {info['leaves_to_search']} / {info['leaves']} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-shard", type=int, default=250)
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--vectors", type=int, default=50_000)
    parser.add_argument("--skip-embedding", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="picsearch-spark-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_embedding:
            print_embedding(time_embedding(args, work), args.rounds)
        if args.vectors:
            time_index_build(args, work)


if __name__ == "__main__":
    main()
