"""Indexing speed: the whole ``index`` pipeline against each of its stages measured alone.

    python benchmarks/index.py [--model default] [--count 200] [--workers N] [--batch-size 32]

Two datasets: the sample photos (``picsearch.samples``) and ``--count`` generated
12-megapixel JPEGs (4000x3000, quality 90, every fourth with EXIF orientation 6),
written once under ``benchmarks/data/`` and reused. For each, with the page cache
warm, it times a full ``index`` run into a fresh library, then each stage alone on
the same cores and with the same threads as the pipeline (read+hash and decode and
preprocess in a pool of ``--workers`` threads, encode and write on the main thread),
and a second ``index`` run over the unchanged folder. Medians of ``--repeat`` rounds.

The ideal pipeline time is max(slowest stage, CPU seconds of all stages / cores):
on a machine where every stage alone already fills the cores, overlap cannot beat
the CPU the stages need. Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import picsearch
from picsearch import images
from picsearch.catalog import Catalog
from picsearch.encoders import Encoder, load_encoder
from picsearch.samples import write_sample_photos

DATA = Path(__file__).resolve().parent / "data"
WIDTH, HEIGHT = 4000, 3000
ROTATED_EVERY = 4  # every fourth generated photo carries EXIF orientation 6
TARGET_RATIO = 1.15
STAGES = ("read+hash", "decode", "preprocess", "encode", "write")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- datasets


def photo_like(seed: int) -> bytes:
    """One 4000x3000 JPEG (quality 90): smooth gradients, soft blobs and sensor-like noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    field = Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    blobs = rng.integers(0, 256, (HEIGHT // 16, WIDTH // 16, 3), dtype=np.uint8)
    blobs_image = Image.fromarray(blobs).resize((WIDTH // 4, HEIGHT // 4), Image.Resampling.BICUBIC)
    blobs_image = blobs_image.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    pixels = np.asarray(Image.blend(field, blobs_image, 0.35), dtype=np.int16)
    tile = rng.normal(0, rng.uniform(3.0, 6.5), (500, 500, 3)).astype(np.int16)
    pixels += np.tile(tile, (HEIGHT // 500, WIDTH // 500, 1))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    if seed % ROTATED_EVERY == 0:
        exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _write_photo(path: Path, seed: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(photo_like(seed))
    os.replace(tmp, path)


def generated_photos(count: int) -> Path:
    """A folder of ``count`` generated photos: hard links into a pool that only grows."""
    pool = DATA / "pool-12mp"
    pool.mkdir(parents=True, exist_ok=True)
    paths = [pool / f"photo_{i:05d}.jpg" for i in range(count)]
    missing = [(p, i) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        log(f"generating {len(missing)} 12-MP JPEGs in {pool} (once)...")
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool_exec:
            list(pool_exec.map(_write_photo, *zip(*missing, strict=True)))
    folder = DATA / f"12mp-{count}"
    folder.mkdir(exist_ok=True)
    for path in paths:
        link = folder / path.name
        if not link.exists():
            try:
                os.link(path, link)
            except OSError:
                link.write_bytes(path.read_bytes())
    return folder


def sample_photos() -> Path:
    """The sample photos, alone in their folder."""
    folder = DATA / "samples"
    current = {path.name for path in write_sample_photos(folder)}
    for stale in folder.glob("*.jpg"):  # photos dropped from picsearch.samples since
        if stale.name not in current:
            stale.unlink()
    return folder


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in images.IMAGE_EXTENSIONS)


def warm_page_cache(paths: Iterable[Path]) -> int:
    return sum(len(p.read_bytes()) for p in paths)


# ----------------------------------------------------------------- timing


@dataclass
class Timed:
    wall: float
    cpu: float


def timed(work: Callable[[], object]) -> tuple[Timed, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return Timed(time.perf_counter() - wall, time.process_time() - cpu), result


def in_pool(function: Callable, items: list, workers: int) -> Callable[[], list]:
    def run() -> list:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench") as pool:
            return list(pool.map(function, items))

    return run


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def time_stages(
    paths: list[Path], encoder: Encoder, workers: int, batch_size: int, db_dir: Path
) -> dict[str, Timed]:
    """Each stage alone, fed by the previous stage's results, with the pipeline's threads."""
    times: dict[str, Timed] = {}
    # Keep only the digests, as the pipeline drops each file's bytes once decoded: holding
    # every file would make each read fault in fresh pages (about 2x the read+hash cost).
    times["read+hash"], _ = timed(in_pool(lambda p: images.read_file(p).digest, paths, workers))
    files = [images.read_file(p) for p in paths]

    def decode(file: images.ImageFile) -> Image.Image:
        image, _, _ = images.decode(
            file.data, short_side=encoder.decode_size, max_pixels=images.DEFAULT_MAX_PIXELS
        )
        return image

    times["decode"], decoded = timed(in_pool(decode, files, workers))
    times["preprocess"], arrays = timed(in_pool(encoder.preprocess, decoded, workers))

    def encode() -> list:
        return [encoder.embed_arrays(np.stack(batch)) for batch in batches(arrays, batch_size)]

    times["encode"], embedded = timed(encode)
    times["write"], _ = timed(lambda: write_catalog(paths, files, embedded, encoder, db_dir))
    return times


def write_catalog(paths, files, embedded, encoder: Encoder, db_dir: Path) -> None:
    """What ingest's writer does: one transaction per batch, one upsert per image."""
    catalog = Catalog(db_dir / "write-stage.db", create=True)
    catalog.bind_model("bench", encoder.model_id, encoder.dim, encoder.visual_dim)
    rows = batches(list(zip(paths, files, strict=True)), len(embedded[0].joint))
    for batch, vectors in zip(rows, embedded, strict=True):
        with catalog.transaction():
            for i, (path, file) in enumerate(batch):
                info = path.stat()
                catalog.upsert(
                    path_bytes=os.fsencode(path),
                    size=info.st_size,
                    mtime_ns=info.st_mtime_ns,
                    digest=file.digest,
                    width=WIDTH,
                    height=HEIGHT,
                    joint=vectors.joint[i],
                    visual=None if vectors.visual is None else vectors.visual[i],
                )
    catalog.close()


def time_index(
    folder: Path, model: str, workers: int, batch_size: int, db_dir: Path
) -> tuple[Timed, Timed, int]:
    """A full index run into a fresh library, then a second run over the unchanged folder."""
    with picsearch.open(db_dir / "library.db", model=model) as lib:
        lib.encoder  # noqa: B018 - load (process-cached) before timing
        first, summary = timed(lambda: lib.index(folder, workers=workers, batch_size=batch_size))
        again, summary2 = timed(lambda: lib.index(folder, workers=workers, batch_size=batch_size))
    if summary.embedded == 0 or summary2.unchanged != summary.embedded:
        raise RuntimeError(f"unexpected index runs: {summary} / {summary2}")
    return first, again, summary.embedded


def warm_up(encoder: Encoder, paths: list[Path], batch_size: int) -> None:
    """Load the sessions and the class bank; touch every code path once."""
    file = images.read_file(paths[0])
    image, _, _ = images.decode(
        file.data, short_side=encoder.decode_size, max_pixels=images.DEFAULT_MAX_PIXELS
    )
    array = encoder.preprocess(image)
    encoder.embed_arrays(np.stack([array] * min(batch_size, 8)))


# ----------------------------------------------------------------- one dataset


@dataclass
class Result:
    name: str
    images: int
    mean_mb: float
    stages: dict[str, Timed]
    pipeline: Timed
    again: Timed

    @property
    def slowest(self) -> str:
        return max(STAGES, key=lambda s: self.stages[s].wall)

    @property
    def stage_sum(self) -> float:
        return sum(t.wall for t in self.stages.values())

    def ideal(self, cores: int) -> float:
        cpu = sum(t.cpu for t in self.stages.values())
        return max(self.stages[self.slowest].wall, cpu / cores)


def median_timed(runs: list[Timed]) -> Timed:
    return Timed(statistics.median(t.wall for t in runs), statistics.median(t.cpu for t in runs))


def measure(name: str, folder: Path, encoder: Encoder, args: argparse.Namespace) -> Result:
    paths = image_files(folder)
    total = warm_page_cache(paths)
    warm_up(encoder, paths, args.batch_size)
    stage_runs: dict[str, list[Timed]] = {s: [] for s in STAGES}
    firsts, agains = [], []
    for round_no in range(1, args.repeat + 1):
        log(f"{name}: round {round_no}/{args.repeat}")
        with tempfile.TemporaryDirectory(prefix="picsearch-bench-") as tmp:
            first, again, count = time_index(
                folder, args.model, args.workers, args.batch_size, Path(tmp)
            )
            if count != len(paths):
                raise RuntimeError(f"indexed {count} of {len(paths)} images in {folder}")
            firsts.append(first)
            agains.append(again)
            for stage, t in time_stages(
                paths, encoder, args.workers, args.batch_size, Path(tmp)
            ).items():
                stage_runs[stage].append(t)
    stages = {s: median_timed(runs) for s, runs in stage_runs.items()}
    return Result(
        name,
        len(paths),
        total / len(paths) / 1e6,
        stages,
        median_timed(firsts),
        median_timed(agains),
    )


# ----------------------------------------------------------------- printing


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def stage_row(label: str, t: Timed, n: int, mark: str = "") -> list[str]:
    return [
        label,
        f"{t.wall:.3f}",
        f"{n / t.wall:.1f}",
        f"{1000 * t.wall / n:.2f}",
        f"{t.cpu:.3f}",
        f"{1000 * t.cpu / n:.2f}",
        f"{t.cpu / t.wall:.2f}",
        mark,
    ]


def print_result(result: Result) -> None:
    n = result.images
    print(f"\n## {result.name}: {n} images, {result.mean_mb:.2f} MB per file on average")
    rows = [
        stage_row(s, t, n, "<- slowest" if s == result.slowest else "")
        for s, t in result.stages.items()
    ]
    cpu = sum(t.cpu for t in result.stages.values())
    rows.append(stage_row("sum of stages", Timed(result.stage_sum, cpu), n))
    rows.append(stage_row("index (pipeline)", result.pipeline, n))
    rows.append(stage_row("index, 2nd run", result.again, n, "(unchanged folder)"))
    print_table(
        ["stage", "wall s", "img/s", "ms/img", "cpu s", "cpu ms/img", "cores", "note"], rows
    )


def print_summary(results: list[Result], cores: int) -> None:
    print(f"\n## summary (target: index <= {TARGET_RATIO:.2f}x its slowest stage)")
    rows = []
    for r in results:
        wall = r.pipeline.wall
        stage_cpu = sum(t.cpu for t in r.stages.values())
        rows.append(
            [
                r.name,
                str(r.images),
                f"{r.images / wall:.1f}",
                r.slowest,
                f"{wall / r.stages[r.slowest].wall:.2f}x",
                f"{r.ideal(cores) / r.stages[r.slowest].wall:.2f}x",
                f"{wall / r.stage_sum:.2f}x",
                f"{wall / r.ideal(cores):.2f}x",
                f"{r.pipeline.cpu / stage_cpu:.2f}x",
                f"{100 * r.again.wall / wall:.1f}%",
            ]
        )
    print_table(
        [
            "dataset",
            "images",
            "index img/s",
            "slowest stage",
            "index/slowest",
            "ideal/slowest",
            "index/sum",
            "index/ideal",
            "cpu index/stages",
            "2nd run/1st",
        ],
        rows,
    )
    print(
        f"\nideal = max(slowest stage, CPU s of all stages / {cores} cores): the best any "
        "overlap can do when each stage alone fills the cores; ideal/slowest above the target "
        "means the target needs less CPU, not more overlap. cores = cpu s / wall s."
    )


# ----------------------------------------------------------------- main


def onnx_threads() -> str:
    try:
        from picsearch.encoders.onnx_export import num_threads
    except ImportError:
        return "?"
    return str(num_threads())


def load_average() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model spec (default: default)")
    parser.add_argument("--count", type=int, default=200, help="generated 12-MP photos")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: cores)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument("--skip-samples", action="store_true", help="only the 12-MP photos")
    args = parser.parse_args(argv)
    args.workers = args.workers or os.cpu_count() or 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    log(f"loading model {args.model!r}...")
    encoder = load_encoder(args.model)
    datasets = [] if args.skip_samples else [("samples", sample_photos())]
    datasets.append((f"12mp x{args.count}", generated_photos(args.count)))
    print(
        f"# index benchmark: model {args.model} ({encoder.model_id}), {cores} cores, "
        f"workers {args.workers}, batch {args.batch_size}, "
        f"PICSEARCH_THREADS={os.environ.get('PICSEARCH_THREADS', '-')} "
        f"(ONNX intra-op threads {onnx_threads()}), median of {args.repeat}; "
        f"load average {load_average()} at the start"
    )
    results = [measure(name, folder, encoder, args) for name, folder in datasets]
    for result in results:
        print_result(result)
    print_summary(results, cores)
    print(f"load average {load_average()} at the end")


if __name__ == "__main__":
    main()
