"""``picsearch similar IMAGE_OR_ID``: the photos most like an image file or a stored photo."""

from __future__ import annotations

import argparse
import os

from ..errors import InvalidInput
from ..library import Library
from ..query import SearchQuery
from .output import print_hits
from .parser import Commands, add_command, db_option, json_option, k_option

__all__ = ["register"]

_HELP = "photos most like an image file or a stored photo id"


def register(commands: Commands) -> None:
    similar = add_command(commands, "similar", _run_similar, help=_HELP)
    similar.add_argument("target", metavar="IMAGE_OR_ID", help="an image file, or a photo id")
    db_option(similar)
    k_option(similar)
    json_option(similar, "a JSON array")


def _run_similar(args: argparse.Namespace) -> int:
    target = args.target
    like = int(target) if target.isdigit() and not os.path.exists(target) else None
    if like is None and not os.path.exists(os.path.expanduser(target)):
        raise InvalidInput(f"{target} is neither an image file nor a photo id of the library")
    with Library(args.db, create=False) as library:
        if like is not None:
            library.get(like)  # an unknown id is an error, not an empty result
            hits = library.search(SearchQuery(like=like, k=args.k))
        else:
            hits = library.search(SearchQuery(image=target, k=args.k))
    print_hits(hits, as_json=args.json, with_id=True)
    return 0
