"""``picsearch models``: the models on this machine; ``picsearch models pull ORG/NAME``
downloads one into the Hugging Face cache, on purpose (nothing else ever downloads)."""

from __future__ import annotations

import argparse

from ..encoders import load_encoder
from ..encoders.hub_cache import cache_folder, pull
from ..encoders.model_checks import pickle_allowed
from ..encoders.model_layouts import available_models
from ..errors import InvalidInput
from .output import print_json, printable, status, table
from .parser import Commands, add_command, json_option

__all__ = ["register"]

_HELP = "the models on this machine; 'models pull ORG/NAME' downloads one"


def register(commands: Commands) -> None:
    models = add_command(commands, "models", _run_models, help=_HELP)
    models.add_argument(
        "action", nargs="?", choices=["list", "pull"], default="list", help="list (default) or pull"
    )
    models.add_argument("repo", nargs="?", metavar="ORG/NAME", help="the model to pull")
    json_option(models, "a JSON array")


def _run_models(args: argparse.Namespace) -> int:
    if args.action == "pull":
        return _pull(args)
    if args.repo is not None:
        raise InvalidInput(f"'picsearch models' lists; to download {args.repo}, use 'models pull'")
    entries = available_models()
    if args.json:
        print_json([entry.to_dict() for entry in entries])
        return 0
    rows = [["model", "layout", "dim", "size"]]
    for entry in entries:
        size = "?" if entry.size_bytes is None else f"{entry.size_bytes / 1e6:.1f} MB"
        rows.append([entry.spec, entry.layout, str(entry.dim), size])
    print(table(rows))
    for entry in entries:
        if entry.note:
            status(f"{entry.spec}: {entry.note}")
    status(f"Hugging Face cache: {printable(str(cache_folder()))}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    if not args.repo:
        raise InvalidInput("models pull needs a model id: picsearch models pull ORG/NAME")
    allowed = pickle_allowed()
    folder = pull(args.repo, allow_pickle=allowed)
    try:
        load_encoder(f"clip:{args.repo}")  # its files checked now, not at the first index
    except InvalidInput as exc:
        left = "" if allowed else " (pickled weights were left behind: --allow-pickle)"
        raise InvalidInput(
            f"{args.repo}: downloaded to {folder}, but picsearch cannot use it{left}: {exc}"
        ) from None
    if args.json:
        print_json({"spec": f"clip:{args.repo}", "path": str(folder)})
    else:
        print(f"clip:{args.repo}")
        status(f"use it with --model clip:{args.repo}")
    return 0
