"""``picsearch export``: one searcher file from a library; ``search --searcher`` queries it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..library import Hit

__all__ = ["register", "search_searcher"]


def register(commands: argparse._SubParsersAction) -> None:
    from .entry import db_option

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
    from ..export import export_searcher
    from ..library import Library

    with Library(args.db, create=False) as library:
        report = export_searcher(library, args.output, quantize=args.quantize)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report, file=sys.stderr)
    return 0


def search_searcher(args: argparse.Namespace) -> list[Hit]:
    """The results of ``picsearch search --searcher FILE``: the library's hits, filtered
    and ranked as ``picsearch search --db`` would."""
    from ..errors import InvalidInput
    from ..searcher import ImageSearcher, TextSearcher

    if args.db is not None:
        raise InvalidInput("give --db LIBRARY or --searcher FILE, not both")
    if args.like is not None:
        raise InvalidInput(
            "--like is not supported with --searcher: search by the photo with --image FILE"
        )
    if args.query is not None and args.image is not None:
        raise InvalidInput("a searcher file answers a text or an image query, not both at once")
    filters = {
        "folder": args.folder,
        "after": args.after,
        "before": args.before,
        "people": args.people,
        "has_text": args.has_text,
        "bw": args.bw,
        "color": args.color,
    }
    if args.image is not None:
        if args.text_only:
            raise InvalidInput("a text-only search looks for words: give words, and no image")
        searcher = ImageSearcher.create_from_file(args.searcher)
        return searcher.search(args.image, k=args.k, **filters).hits()
    searcher = TextSearcher.create_from_file(args.searcher)
    return searcher.search(args.query, k=args.k, text_only=args.text_only, **filters).hits()
