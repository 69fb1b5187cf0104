"""``picsearch export``: one searcher file from a library; ``search --searcher`` queries it."""

from __future__ import annotations

import argparse

from ..library import Library
from .output import print_json, summary
from .parser import Commands, add_command, db_option, json_option

__all__ = ["register"]

_HELP = "write a library as one searcher file (query encoder + index + metadata)"


def register(commands: Commands) -> None:
    export = add_command(commands, "export", _run_export, help=_HELP)
    db_option(export)
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="searcher file")
    export.add_argument(
        "--quantize",
        choices=["none", "vectors", "int8"],
        default="none",
        help="vectors: int8 stored vectors; int8: also the text encoder's weights "
        "(smaller, slightly different results: the cost is measured and printed)",
    )
    json_option(export, "the export report as JSON")


def _run_export(args: argparse.Namespace) -> int:
    from ..searcher.export import export_searcher

    with Library(args.db, create=False) as library:
        report = export_searcher(library, args.output, quantize=args.quantize)
    if args.json:
        print_json(report.to_dict())
    else:
        summary(str(report))
    return 0
