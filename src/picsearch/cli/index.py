"""``picsearch index FOLDER...``: build or update a library from folders."""

from __future__ import annotations

import argparse

from ..ingest import IndexInterrupted, check_roots
from ..library import Library
from .output import status, summary
from .parser import (
    Commands,
    add_command,
    db_option,
    encoder_batch_option,
    max_pixels_option,
    quiet_option,
)

__all__ = ["register"]

_HELP = "build or update a library from folders"


def register(commands: Commands) -> None:
    index = add_command(commands, "index", _run_index, help=_HELP)
    index.add_argument("paths", nargs="+", metavar="FOLDER", help="folders (or files) to index")
    db_option(index)
    index.add_argument("--model", help="model spec: default, clip:/path/to/dir (new libraries)")
    max_pixels_option(index)
    encoder_batch_option(index)
    index.add_argument("--workers", type=int, help="decoding threads (default: CPU count)")
    index.add_argument(
        "--index",
        default="auto",
        choices=["auto", "exact", "scann", "faiss"],
        help="vector index (default auto: exact when small, a tuned ANN index when large)",
    )
    index.add_argument(
        "--concepts",
        choices=["off", "fast", "full"],
        help="people, text, colour and object detectors to run per photo: off; fast (colours, "
        "faces); full (also objects and text, slower). Default: the library's last, else fast",
    )
    quiet_option(index)


def _run_index(args: argparse.Namespace) -> int:
    check_roots(args.paths)  # before the library file is made: a typo leaves no empty file
    with Library(args.db, model=args.model, index=args.index) as library:
        try:
            done = library.index(
                args.paths,
                max_pixels=args.max_pixels,
                batch_size=args.batch_size,
                workers=args.workers,
                progress=not args.quiet,
                concepts=args.concepts,
            )
        except IndexInterrupted as stop:
            status(
                f"interrupted: kept {stop.kept} photos indexed so far; "
                "run the same command to continue"
            )
            return 130
        summary(f"{library.path} (model '{library.model}'): {done}")
    return 0
