"""``picsearch train`` and ``picsearch eval``: train a dual encoder, measure retrieval.

Nothing heavy is imported here until a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .output import print_json, status, table
from .parser import Commands, add_command, json_option, quiet_option

if TYPE_CHECKING:
    from ..train.evaluate import RetrievalReport

__all__ = ["register", "format_reports"]

_TRAIN_HELP = "train a dual encoder on captioned images"
_TRAIN_DESCRIPTION = (
    "Train projection heads over the frozen default encoders on image-caption "
    "pairs; writes a model folder for --model dual:FOLDER."
)
_EVAL_HELP = "retrieval recall@K of models on captioned images"
_EVAL_DESCRIPTION = "Text->image and image->text recall@1/5/10 of each model on a captioned set."


def register(commands: Commands) -> None:
    _register_train(commands)
    _register_eval(commands)


def _register_train(commands: Commands) -> None:
    train = add_command(
        commands, "train", _run_train, help=_TRAIN_HELP, description=_TRAIN_DESCRIPTION
    )
    _data_options(train, "training")
    train.add_argument("-o", "--output", required=True, metavar="FOLDER", help="model folder")
    train.add_argument("--val-captions", metavar="FILE", help="validation captions file")
    train.add_argument("--val-images", metavar="DIR", help="validation image folder")
    _head_options(train)
    _schedule_options(train)
    train.add_argument("--restart", action="store_true", help="ignore a checkpoint; start over")
    json_option(train, "the result as JSON")
    quiet_option(train)


def _head_options(train: argparse.ArgumentParser) -> None:
    """The shape of the projection heads."""
    train.add_argument("--dim", type=int, default=256, help="joint space size (default 256)")
    train.add_argument("--blocks", type=int, default=1, help="residual blocks per head")
    train.add_argument("--dropout", type=float, default=0.1, help="dropout (default 0.1)")


def _schedule_options(train: argparse.ArgumentParser) -> None:
    """How long and how the heads learn, and where."""
    train.add_argument("--epochs", type=int, default=30, help="at most this many (default 30)")
    train.add_argument("--batch-size", type=int, default=256, help="pairs per step")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument(
        "--loss",
        default="clip",
        choices=["clip", "soft"],
        help="clip: symmetric cross-entropy; soft: Keras-example soft targets",
    )
    train.add_argument(
        "--monitor",
        default="val_loss",
        choices=["val_loss", "val_recall"],
        help="what early stopping and the kept epoch follow",
    )
    train.add_argument("--patience", type=int, default=5, help="epochs without improvement")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument(
        "--unfreeze-text",
        type=int,
        default=0,
        metavar="N",
        help="also train MiniLM's last N of 6 layers (default 0; slow without a GPU)",
    )
    train.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where torch trains: auto (CUDA if available), cpu or cuda",
    )


def _register_eval(commands: Commands) -> None:
    evaluate = add_command(
        commands, "eval", _run_eval, help=_EVAL_HELP, description=_EVAL_DESCRIPTION
    )
    _data_options(evaluate, "evaluation")
    evaluate.add_argument(
        "--model", action="append", metavar="SPEC", help="model spec, repeatable (default: default)"
    )
    evaluate.add_argument(
        "--top-k", type=int, default=100, help="k of the top-k accuracy column (default 100)"
    )
    evaluate.add_argument(
        "--class-template",
        default="a photo of a {label}",
        help="class query for image labels, if the file has them",
    )
    json_option(evaluate, "a JSON array")
    quiet_option(evaluate)


def _data_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--captions",
        required=True,
        metavar="FILE",
        help=f"{what} captions: COCO captions JSON, or CSV / JSONL with image_path,caption",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="folder the image paths are relative to (default: the captions file's folder)",
    )


def _run_train(args: argparse.Namespace) -> int:
    from ..train import TrainOptions, read_captions, train

    captions = read_captions(args.captions, images=args.images)
    val = None
    if args.val_captions:
        val = read_captions(args.val_captions, images=args.val_images)
    options = TrainOptions(
        dim=args.dim,
        blocks=args.blocks,
        dropout=args.dropout,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        monitor=args.monitor,
        seed=args.seed,
        unfreeze_text=args.unfreeze_text,
        device=args.device,
    )
    result = train(
        captions,
        output=args.output,
        val=val,
        options=options,
        restart=args.restart,
        progress=not args.quiet,
    )
    if args.json:
        data = {key: value for key, value in vars(result).items() if key != "history"}
        data.update(folder=str(result.folder), model=result.model_spec)
        print_json(data)
    else:
        print(result)
        print(f"use it with --model {result.model_spec}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from ..train import read_captions
    from ..train.evaluate import evaluate_model

    captions = read_captions(args.captions, images=args.images)
    reports = [
        evaluate_model(
            spec,
            captions,
            top_k=args.top_k,
            class_template=args.class_template,
            progress=not args.quiet,
        )
        for spec in args.model or ["default"]
    ]
    if args.json:
        print_json([report.to_dict() for report in reports])
    else:
        print(format_reports(reports))
    skipped = reports[0].skipped if reports else {}
    if skipped:
        detail = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
        status(f"skipped {detail}")
    return 0


def format_reports(reports: Sequence[RetrievalReport]) -> str:
    """An aligned table, one row per model."""
    top_k = reports[0].top_k if reports else 100
    header = [
        "model",
        "images",
        "captions",
        "t2i R@1",
        "R@5",
        "R@10",
        "i2t R@1",
        "R@5",
        "R@10",
        f"acc@{top_k}",
        "class mAP",
    ]
    rows = [header]
    for r in reports:
        figures = [*r.text_to_image.values(), *r.image_to_text.values(), r.top_k_accuracy]
        cmap = "-" if r.class_map is None else f"{r.class_map:.3f}"
        rows.append([r.model, str(r.images), str(r.captions), *(f"{v:.3f}" for v in figures), cmap])
    return table(rows)
