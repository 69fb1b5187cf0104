"""``picsearch export``: one searcher file from a library, or TensorFlow Lite searchers
(``--format tflite``); ``search --searcher`` queries the first."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InvalidInput
from ..library import Library
from .output import print_json, summary
from .parser import Commands, add_command, db_option, json_option

__all__ = ["register"]

_TFLITE_ONLY = (
    "tflite_metadata",
    "tflite_only",
    "tflite_partitions",
    "tflite_partitions_to_search",
    "tflite_pq",
)
_HELP = "write a library as one searcher file (query encoder + index + metadata)"


def register(commands: Commands) -> None:
    export = add_command(commands, "export", _run_export, help=_HELP)
    db_option(export)
    export.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="searcher file; with --format tflite a folder for the two .tflite files",
    )
    export.add_argument(
        "--format",
        choices=["searcher", "tflite"],
        default="searcher",
        help="searcher: picsearch's one-file searcher; tflite: text_searcher.tflite and "
        "image_searcher.tflite for the TensorFlow Lite Task Library (needs make tflite-env)",
    )
    export.add_argument(
        "--quantize",
        choices=["none", "vectors", "int8"],
        default="none",
        help="vectors: int8 stored vectors; int8: also the text encoder's weights "
        "(smaller, slightly different results: the cost is measured and printed)",
    )
    _tflite_options(export)
    json_option(export, "the export report as JSON")


def _tflite_options(export: argparse.ArgumentParser) -> None:
    group = export.add_argument_group("--format tflite")
    group.add_argument(
        "--tflite-metadata",
        metavar="FIELD",
        help="each item's metadata: this one field (path, id or an application field) "
        "instead of its whole JSON",
    )
    group.add_argument("--tflite-only", choices=["text", "image"], help="write only this searcher")
    group.add_argument(
        "--tflite-partitions", type=int, metavar="N", help="index leaves (default: sqrt(items))"
    )
    group.add_argument(
        "--tflite-partitions-to-search",
        type=int,
        metavar="N",
        help="leaves a query searches (default: those holding about 5,000 items)",
    )
    group.add_argument(
        "--tflite-pq",
        action="store_true",
        help="product quantization (smaller index, approximate scores)",
    )
    group.add_argument(
        "--tflite-dims-per-block",
        type=int,
        default=2,
        metavar="N",
        help="dimensions per product-quantization block (default 2)",
    )
    group.add_argument(
        "--tflite-distance",
        choices=["dot_product", "squared_l2"],
        default="dot_product",
        help="how the index scores (default dot_product: the cosine of unit vectors)",
    )


def _run_export(args: argparse.Namespace) -> int:
    if args.format != "tflite":
        given = [f"--{k.replace('_', '-')}" for k in _TFLITE_ONLY if getattr(args, k)]
        if given:
            raise InvalidInput(f"{', '.join(given)} go with --format tflite")
    with Library(args.db, create=False) as library:
        if args.format == "tflite":
            report = _export_tflite(library, args)
        else:
            from ..searcher.export import export_searcher

            report = export_searcher(library, args.output, quantize=args.quantize)
    if args.json:
        print_json(report.to_dict())
    else:
        summary(str(report))
    return 0


def _export_tflite(library: Library, args: argparse.Namespace) -> Any:
    from ..tflite import ScannOptions, export_tflite

    if args.quantize != "none":
        raise InvalidInput("--quantize is for --format searcher: use --tflite-pq with tflite")

    options = ScannOptions(
        partitions=args.tflite_partitions,
        partitions_to_search=args.tflite_partitions_to_search,
        product_quantization=args.tflite_pq,
        dims_per_block=args.tflite_dims_per_block,
        distance=args.tflite_distance,
    )
    searchers = (args.tflite_only,) if args.tflite_only else ("text", "image")
    return export_tflite(
        library,
        args.output,
        options=options,
        metadata_field=args.tflite_metadata,
        searchers=searchers,
    )
