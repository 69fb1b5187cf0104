"""``picsearch search``: photos by words, by an example image or by a stored photo,
with filters; from a library, or from an exported searcher file (``--searcher``)."""

from __future__ import annotations

import argparse
import datetime as dt

from ..errors import InvalidInput
from ..library import Hit, Library
from ..library.hits import no_good_match
from ..query import SearchQuery
from ..query_phrases import Understood, describe, understand
from .output import print_hits, summary
from .parser import Commands, add_command, db_option, json_option, k_option

__all__ = ["register"]

_HELP = "search a library by text and/or image"


def register(commands: Commands) -> None:
    search = add_command(commands, "search", _run_search, help=_HELP)
    search.add_argument("query", nargs="?", help="what to find, in words")
    search.add_argument("--image", metavar="FILE", help="an example image to search by")
    k_option(search)
    search.add_argument("--like", type=int, metavar="ID", help="more like the photo with this id")
    search.add_argument("--folder", metavar="DIR", help="only photos under this folder")
    search.add_argument(
        "--after", metavar="DATE", help="only photos taken from DATE (else their file time)"
    )
    search.add_argument(
        "--before", metavar="DATE", help="only photos taken before DATE (else their file time)"
    )
    search.add_argument(
        "--place", metavar="TEXT", help="only photos taken in this city, region or country"
    )
    search.add_argument(
        "--camera", metavar="TEXT", help="only photos taken with this camera (make or model)"
    )
    search.add_argument(
        "--people",
        action=argparse.BooleanOptionalAction,
        help="only photos with people (--no-people: only photos without)",
    )
    search.add_argument(
        "--has-text", action="store_true", default=None, help="only photos with text in them"
    )
    search.add_argument("--bw", action="store_true", default=None, help="only black and white")
    search.add_argument("--color", metavar="NAME", help="only photos where this colour dominates")
    search.add_argument(
        "--text-only", action="store_true", help="search only the words read in the photos"
    )
    search.add_argument(
        "--min-score",
        type=float,
        metavar="SCORE",
        help="leave out photos scoring under SCORE (default: keep them, listing those under"
        " the model's weak-match cutoff after a line that says so)",
    )
    search.add_argument(
        "--literal",
        action="store_true",
        help="search the words as written: no dates or places read from them",
    )
    json_option(search, "a JSON array")
    search.add_argument(
        "--searcher", metavar="FILE", help="query an exported searcher file instead of a library"
    )
    db_option(search)


def _run_search(args: argparse.Namespace) -> int:
    understood: Understood | None = None
    if args.searcher:
        hits, empty = _search_searcher(args), False
    else:
        hits, empty, understood = _search_library(args)
    print_hits(hits, as_json=args.json, understood=understood.to_dict() if understood else None)
    if empty:
        summary("the library is empty: run 'picsearch index FOLDER' first")
    elif not hits:
        summary("no photo matched" if args.min_score is None else _none_scored(args.min_score))
    elif no_good_match(hits):
        summary(f"no good match for {args.query!r}; showing the closest weak matches")
    return 0


def _none_scored(min_score: float) -> str:
    return f"no photo scored {min_score:g} or more: lower --min-score to see the closest ones"


#: The flags that set the SearchQuery field of the same name (the words set ``text``):
#: what to look for, and the filters.
_QUERY_FIELDS = ("image", "like", "k", "text_only", "min_score")
_FILTER_FIELDS = (
    "folder",
    "after",
    "before",
    "place",
    "camera",
    "people",
    "has_text",
    "bw",
    "color",
)


def _query(args: argparse.Namespace) -> SearchQuery:
    """The search the command line asks for: one object, for a library or a searcher."""
    fields = {name: getattr(args, name) for name in _QUERY_FIELDS + _FILTER_FIELDS}
    return SearchQuery(text=args.query, **fields)


def _search_library(args: argparse.Namespace) -> tuple[list[Hit], bool, Understood | None]:
    """The hits, whether the library is empty (which says why nothing matched), and
    what the words said of when and where (None when nothing or ``--literal``)."""
    understood = None
    with Library(args.db, create=False) as library:
        if args.query is not None and not args.literal:
            understood = _read_phrases(args, library.place_names())
        hits = library.search(_query(args))
        return hits, not len(library), understood


def _read_phrases(args: argparse.Namespace, places: list[str]) -> Understood | None:
    """Turn the dates and places the words state into filters (flags given by hand
    win over them), and say on stderr what was understood."""
    understood = understand(
        args.query,
        today=dt.date.today(),
        places=() if args.place is not None else places,
        dates=args.after is None and args.before is None,
    )
    if not understood.any:
        return None
    args.query = understood.text
    if understood.after is not None:
        args.after, args.before = understood.after, understood.before
    if understood.place is not None:
        args.place = understood.place
    summary(f"picsearch: {describe(understood)}")
    return understood


def _search_searcher(args: argparse.Namespace) -> list[Hit]:
    """The hits of ``--searcher FILE``: the library's hits, filtered and ranked as
    ``--db`` would."""
    from ..searcher import ImageSearcher, TextSearcher

    if args.db is not None:
        raise InvalidInput("give --db LIBRARY or --searcher FILE, not both")
    if args.like is not None:
        raise InvalidInput(
            "--like is not supported with --searcher: search by the photo with --image FILE"
        )
    if args.place is not None or args.camera is not None:
        raise InvalidInput(
            "--place and --camera are not supported with --searcher: search the library (--db)"
        )
    if args.query is not None and args.image is not None:
        raise InvalidInput("a searcher file answers a text or an image query, not both at once")
    if args.image is not None:
        if args.text_only:
            raise InvalidInput("a text-only search looks for words: give words, and no image")
        return ImageSearcher.create_from_file(args.searcher).search(_query(args)).hits()
    return TextSearcher.create_from_file(args.searcher).search(_query(args)).hits()
