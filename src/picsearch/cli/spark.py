"""``picsearch embed`` and ``picsearch build``: collections that outgrow one machine.

    picsearch embed SOURCE... --out DIR [--engine spark --master URL]
    picsearch build --embeddings DIR --db FILE [--engine spark]

The local engine needs no Spark; ``--engine spark`` needs ``picsearch[spark]``
and a Java runtime, and runs on the cluster ``--master`` names (default: the
one spark-submit set, else ``local[*]``).
"""

from __future__ import annotations

import argparse

from .output import summary
from .parser import (
    Commands,
    add_command,
    db_option,
    encoder_batch_option,
    max_pixels_option,
)

__all__ = ["register"]

_EMBED_HELP = "embed folders and webdataset tar shards into Parquet shards"
_BUILD_HELP = "build a library (catalog + index) from shards"


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="local (this machine, the default) or spark (an existing Spark cluster)",
    )
    parser.add_argument(
        "--master",
        metavar="URL",
        help="Spark master, e.g. spark://host:7077 or local[*] (with --engine spark)",
    )


def register(commands: Commands) -> None:
    embed = add_command(commands, "embed", _run_embed, help=_EMBED_HELP)
    embed.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="folders or tar shards: local paths or URIs (shard-{0000..0099}.tar ranges work)",
    )
    embed.add_argument("--out", required=True, metavar="DIR", help="where the shards go (or URI)")
    embed.add_argument("--model", default="default", help="model spec (default: default)")
    _engine_options(embed)
    encoder_batch_option(embed)
    embed.add_argument(
        "--files-per-shard",
        type=int,
        default=1000,
        help="image files of a folder per shard (a tar shard is one shard; default 1000)",
    )
    max_pixels_option(embed)
    embed.add_argument(
        "--workers", type=int, help="shards embedded at once by the local engine (default: cores)"
    )
    embed.add_argument(
        "--concepts",
        choices=["off", "fast", "full"],
        help="concept detectors run on each photo, as 'picsearch index --concepts' runs them "
        "(default: the level --out was embedded with, else fast)",
    )

    build = add_command(commands, "build", _run_build, help=_BUILD_HELP)
    build.add_argument(
        "--embeddings", required=True, metavar="DIR", help="what 'picsearch embed' wrote"
    )
    db_option(build)
    _engine_options(build)
    build.add_argument(
        "--index",
        default="auto",
        choices=["auto", "exact", "faiss", "scann"],
        help="vector index (default auto: exact when small, else FAISS built shard-parallel)",
    )


def _run_embed(args: argparse.Namespace) -> int:
    from ..spark import embed

    done = embed(
        args.sources,
        args.out,
        model=args.model,
        engine=args.engine,
        master=args.master,
        files_per_unit=args.files_per_shard,
        batch_size=args.batch_size,
        max_pixels=args.max_pixels,
        workers=args.workers,
        concepts=args.concepts,
    )
    summary(f"{args.out}: {done}")
    return 0


def _run_build(args: argparse.Namespace) -> int:
    from ..paths import default_db_path
    from ..spark import build

    db = args.db or default_db_path()
    done = build(args.embeddings, db, engine=args.engine, master=args.master, index=args.index)
    summary(f"{done.db}: {done}")
    return 0
