"""Dual-encoder training benchmark: the built-in default vs a trained dual encoder.

On the two generated captioned sets (``benchmarks/captioned_sets.py``):
Fashion-MNIST (train on its train split, evaluate on its test split) and the
compositional shapes set (test scenes combine colours and shapes in ways
training never showed). Prints one table with both models on both sets
(text->image and image->text recall@1/5/10, the Keras example's top-100
accuracy, class-query mAP), the training time per epoch, the targets, and an
end-to-end check: index the test images with the trained model, search them,
and export its query model.

    python benchmarks/train.py                       # everything (first run: features, ~30 min)
    python benchmarks/train.py --sets shapes --epochs 10
    python benchmarks/train.py --fashion-train 20000 # a subset of the train split
    python benchmarks/train.py --sets shapes --unfreeze-text 1 --epochs 6
                                  # a third model: MiniLM's last layer trained too

With ``--unfreeze-text N`` each set also trains "trained dual, last N text
layers unfrozen" (same options, ``unfreeze_text=N``, for ``--unfreeze-epochs``
epochs, default ``--epochs``) and prints it in the same tables.

Base features are cached in picsearch's feature cache; Fashion-MNIST image
features already computed by ``benchmarks/ann.py`` (same images, same
preprocessing, the default model's visual space) are reused after a check.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import captioned_sets  # noqa: E402

from picsearch.encoders import load_encoder  # noqa: E402
from picsearch.train import FeatureStore, TrainOptions, read_captions, train  # noqa: E402
from picsearch.train.evaluate import RetrievalReport, evaluate_model  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
ANN_CACHE = DATA / "fashion-default-60000-1000.npy"
MODELS = DATA / "models"
DUAL = "dual (trained)"
UNFROZEN = "trained dual, last"


def seed_from_ann_cache(root: Path, store: FeatureStore) -> int:
    """Store the Fashion-MNIST visual vectors benchmarks/ann.py cached, if they match ours."""
    if not ANN_CACHE.exists():
        return 0
    encoder = load_encoder("default")
    vectors = np.load(ANN_CACHE, allow_pickle=False)
    pick = np.random.default_rng(0).choice(70000, size=len(vectors), replace=False)  # as ann.py
    files = [
        root / (f"train/{p:05d}.png" if p < 60000 else f"test/{p - 60000:05d}.png") for p in pick
    ]
    rows = [i for i, f in enumerate(files) if f.exists()]
    digests = {i: hashlib.sha256(files[i].read_bytes()).hexdigest()[:32] for i in rows}
    present = store.keys(encoder.model_id, "visual")
    todo = [i for i in rows if digests[i] not in present]
    if not todo:
        return 0
    check = todo[:16]  # same vectors as computing them here? then reuse the rest
    from PIL import Image

    fresh = encoder.embed_images([Image.open(files[i]).convert("RGB") for i in check]).visual
    cosine = float((fresh * vectors[check]).sum(axis=1).min())
    if cosine < 0.9999:
        print(
            f"not reusing {ANN_CACHE.name}: cosine {cosine:.6f} to fresh vectors", file=sys.stderr
        )
        return 0
    store.put(encoder.model_id, "visual", ((digests[i], vectors[i]) for i in todo))
    return len(todo)


def run_set(name: str, root: Path, models: dict[str, TrainOptions], store: FeatureStore) -> dict:
    """Train each model of ``models`` (label -> options) on ``name``, then evaluate them all."""
    train_set = read_captions(root / "captions_train.json")
    test_set = read_captions(root / "captions_test.json")
    print(
        f"[{name}] {len(train_set)} training pairs, {len(test_set)} test captions", file=sys.stderr
    )
    runs = {}
    for label, options in models.items():
        suffix = f"-text{options.unfreeze_text}" if options.unfreeze_text else ""
        started = time.perf_counter()
        result = train(
            train_set,
            output=MODELS / f"{name}-dual{suffix}",
            options=options,
            restart=True,
            store=store,
        )
        runs[label] = {"result": result, "seconds": time.perf_counter() - started}
        print(f"[{name}] {label}: {result}", file=sys.stderr)
    reports = {"default (untrained)": evaluate_model("default", test_set, store=store)}
    for label, run in runs.items():
        reports[label] = evaluate_model(run["result"].model_spec, test_set, store=store)
    return {"runs": runs, "reports": reports, "test": test_set}


def _row(set_name: str, label: str, report: RetrievalReport) -> str:
    t2i = " ".join(f"{report.text_to_image[k]:6.3f}" for k in (1, 5, 10))
    i2t = " ".join(f"{report.image_to_text[k]:6.3f}" for k in (1, 5, 10))
    cmap = "     -" if report.class_map is None else f"{report.class_map:6.3f}"
    return (
        f"| {set_name:<8} | {label:<42} | {report.images:>6} | {report.captions:>6} | {t2i} | "
        f"{i2t} | {report.top_k_accuracy:6.3f} | {cmap} |"
    )


def print_table(results: dict[str, dict]) -> None:
    print("\nTest splits (each caption's own image among all test images):\n")
    print(
        f"| set      | {'model':<42} | images | captions |  t->i R@1 R@5 R@10  |"
        "  i->t R@1 R@5 R@10  | acc@100 | class mAP |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, run in results.items():
        for label, report in run["reports"].items():
            print(_row(name, label, report))
    print("\nTraining (CPU, this machine):\n")
    print(
        "| set | model | pairs (train/val) | epochs run (best) | s per epoch | train total s "
        "| loss |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, run in results.items():
        for label, trained in run["runs"].items():
            r = trained["result"]
            print(
                f"| {name} | {label} | {r.pairs}/{r.val_pairs} | {r.epochs_run} ({r.best_epoch}) | "
                f"{r.seconds_per_epoch:.2f} | {trained['seconds']:.1f} | "
                f"{r.best.get('loss', 0):.4f} |"
            )
    print("\nTargets:")
    if "fashion" in results:
        reports = results["fashion"]["reports"]
        default, dual = reports["default (untrained)"].class_map, reports[DUAL].class_map
        ok = "met" if dual >= 0.80 else "NOT met"
        print(f"  fashion text->image class mAP: {dual:.3f} (default {default:.3f}); >= 0.80 {ok}")
    if "shapes" in results:
        reports = results["shapes"]["reports"]
        default, dual = (reports[k].text_to_image[5] for k in ("default (untrained)", DUAL))
        ratio = dual / max(default, 1e-9)
        ok = "met" if ratio >= 2 else "NOT met"
        print(
            f"  shapes text->image R@5: {dual:.3f} vs default {default:.3f} = {ratio:.1f}x; "
            f">= 2x {ok}"
        )
    for name, run in results.items():
        for label in run["reports"]:
            if label.startswith(UNFROZEN):
                heads, tuned = run["runs"][DUAL]["result"], run["runs"][label]["result"]
                gain = (
                    run["reports"][label].text_to_image[5] - run["reports"][DUAL].text_to_image[5]
                )
                slower = tuned.seconds_per_epoch / max(heads.seconds_per_epoch, 1e-9)
                print(
                    f"  {name}: {label} vs heads only: text->image R@5 {gain:+.3f}, "
                    f"{slower:.0f}x the seconds per epoch (CPU)"
                )


def end_to_end(name: str, run: dict, label: str, count: int = 200, queries: int = 50) -> None:
    """Index test images with the trained model, search them, export a searcher, search it."""
    import picsearch
    from picsearch.searcher import SearcherOptions, TextSearcher
    from picsearch.searcher.export import export_searcher

    test, spec = run["test"], run["runs"][label]["result"].model_spec
    labels = {
        p.name: (test.labels or [None] * len(test.images))[i] for i, p in enumerate(test.images)
    }
    asked = [(test.captions[i], test.images[test.caption_image[i]].name) for i in range(queries)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for path in test.images[:count]:
            (folder / path.name).symlink_to(path)
        with picsearch.open(Path(tmp) / "lib.db", model=spec) as lib:
            summary = lib.index(folder)
            hits = [lib.search(caption, k=5) for caption, _ in asked]
            export = export_searcher(lib, Path(tmp) / "photos.picsearch")
        searcher = TextSearcher.create_from_file(export.path, SearcherOptions(max_results=5))
        same = np.mean(
            [
                searcher.search(c).ids == [h.id for h in found]
                for (c, _), found in zip(asked, hits, strict=True)
            ]
        )
    own = np.mean(
        [
            image in {Path(h.path).name for h in found}
            for (_, image), found in zip(asked, hits, strict=True)
        ]
    )
    line = (
        f"  [{name}, {label}] indexed {summary.added} test images with {spec}; "
        f"of {queries} captions, {own:.0%} find their own image in the top 5"
    )
    if test.labels is not None:
        precision = np.mean(
            [
                labels[Path(h.path).name] == labels[image]
                for (_, image), found in zip(asked, hits, strict=True)
                for h in found
            ]
        )
        line += f", {precision:.0%} of the top 5 share the caption's class"
    print(
        line + f"; exported searcher {export.bytes / 1e6:.0f} MB: the same top 5 for "
        f"{same:.0%} of the captions"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sets", nargs="+", default=["fashion", "shapes"], choices=["fashion", "shapes"]
    )
    parser.add_argument("--fashion-train", type=int, default=60000)
    parser.add_argument("--shapes-train", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--loss", default="clip", choices=["clip", "soft"])
    parser.add_argument("--monitor", default="val_loss", choices=["val_loss", "val_recall"])
    parser.add_argument(
        "--unfreeze-text",
        type=int,
        default=0,
        metavar="N",
        help="also train a model with MiniLM's last N layers unfrozen",
    )
    parser.add_argument(
        "--unfreeze-epochs", type=int, help="epochs of that model (default: --epochs)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    store = FeatureStore()
    options = TrainOptions(
        epochs=args.epochs, batch_size=args.batch_size, loss=args.loss, monitor=args.monitor
    )
    models = {DUAL: options}
    if args.unfreeze_text:
        label = f"{UNFROZEN} {args.unfreeze_text} text layers unfrozen"
        models[label] = dataclasses.replace(
            options,
            unfreeze_text=args.unfreeze_text,
            epochs=args.unfreeze_epochs or args.epochs,
        )
    results = {}
    for name in args.sets:
        if name == "fashion":
            root = captioned_sets.write_fashion(train=args.fashion_train)
            seeded = seed_from_ann_cache(root, store)
            if seeded:
                print(f"[fashion] reused {seeded} cached image vectors", file=sys.stderr)
        else:
            root = captioned_sets.write_shapes(train=args.shapes_train)
        results[name] = run_set(name, root, models, store)
    print_table(results)
    print("\nEnd to end:")
    for name, run in results.items():
        for label in run["runs"]:
            end_to_end(name, run, label)
    if args.json:
        figures = {
            name: {
                "reports": {label: rep.to_dict() for label, rep in run["reports"].items()},
                "training": {
                    label: {
                        "seconds_per_epoch": trained["result"].seconds_per_epoch,
                        "best": trained["result"].best,
                    }
                    for label, trained in run["runs"].items()
                },
            }
            for name, run in results.items()
        }
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
