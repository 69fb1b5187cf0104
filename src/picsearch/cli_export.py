"""``picsearch export``: one searcher file from a library; ``search --searcher`` queries it."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register", "search_searcher"]


def register(commands: argparse._SubParsersAction) -> None:
    from .cli import db_option

    export = commands.add_parser(
        "export", help="write a library as one searcher file (query encoder + index + metadata)"
    )
    db_option(export)
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="searcher file")
    export.add_argument(
        "--quantize",
        choices=["none", "vectors", "int8"],
        default="none",
        help="vectors: int8 stored vectors; int8: also the text encoder's weights "
        "(smaller, slightly different results: the cost is measured and printed)",
    )
    export.add_argument("--json", action="store_true", help="print the export report as JSON")
    export.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_searcher
    from .library import Library

    with Library(args.db, create=False) as library:
        report = export_searcher(library, args.output, quantize=args.quantize)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report, file=sys.stderr)
    return 0


def search_searcher(args: argparse.Namespace) -> list[dict]:
    """The results of ``picsearch search --searcher FILE``, as dicts."""
    from .errors import InvalidInput
    from .searcher import ImageSearcher, SearcherOptions, TextSearcher

    if args.query is not None and args.image is not None:
        raise InvalidInput("a searcher file answers a text or an image query, not both at once")
    unsupported = [f"--{name}" for name in ("like", "folder", "after", "before")]
    given = [flag for flag in unsupported if getattr(args, flag[2:], None) is not None]
    if given:
        raise InvalidInput(f"{', '.join(given)} work with --db libraries, not searcher files")
    options = SearcherOptions(max_results=args.k)
    if args.image is not None:
        return ImageSearcher.create_from_file(args.searcher, options).search(args.image).to_list()
    if args.query is None:
        raise InvalidInput("nothing to search for: give a text query or --image FILE")
    return TextSearcher.create_from_file(args.searcher, options).search(args.query).to_list()
