"""The ``picsearch`` command. Results go to stdout; progress, warnings and summaries to stderr."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..check import ensure_sound
from ..errors import PicsearchError
from ..images import DEFAULT_MAX_PIXELS
from ..ingest import IndexInterrupted, check_roots
from ..library import Hit, Library
from ..paths import DB_ENV
from .output import printable

__all__ = ["main", "db_option", "COMMAND_MODULES"]


class _Parser(argparse.ArgumentParser):
    """The top-level parser: an unknown option after a command is reported with that
    command's usage (argparse would show the top-level one)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        words = sys.argv[1:] if args is None else list(args)
        parsed, extra = self.parse_known_args(words, namespace)
        if extra:
            self._owner(words, extra[0], parsed).error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    def _owner(
        self, words: list[str], unknown: str, parsed: argparse.Namespace
    ) -> argparse.ArgumentParser:
        """The command's parser, unless the unknown word came before the command."""
        command = getattr(parsed, "command", None)
        parser = self._commands().get(command or "")
        if parser is None or command not in words or unknown not in words:
            return parser or self
        return self if words.index(unknown) < words.index(command) else parser

    def _commands(self) -> dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="picsearch", description="Find photos by words or by example, offline.")
    parser.add_argument("--version", action="version", version=f"picsearch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="build or update a library from folders")
    index.add_argument("paths", nargs="+", metavar="FOLDER", help="folders (or files) to index")
    db_option(index)
    index.add_argument("--model", help="model spec: default, clip:/path/to/dir (new libraries)")
    index.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip images with more pixels than this (default {DEFAULT_MAX_PIXELS:,})",
    )
    index.add_argument("--batch-size", type=int, default=32, help="images per encoder batch")
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
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    search = commands.add_parser("search", help="search a library by text and/or image")
    search.add_argument("query", nargs="?", help="what to find, in words")
    search.add_argument("--image", metavar="FILE", help="an example image to search by")
    search.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    search.add_argument("--like", type=int, metavar="ID", help="more like the photo with this id")
    search.add_argument("--folder", metavar="DIR", help="only photos under this folder")
    search.add_argument("--after", metavar="DATE", help="only photos with a file time from DATE")
    search.add_argument("--before", metavar="DATE", help="only photos with a file time before DATE")
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
    search.add_argument("--json", action="store_true", help="print a JSON array")
    search.add_argument(
        "--searcher", metavar="FILE", help="query an exported searcher file instead of a library"
    )
    db_option(search)

    info = commands.add_parser("info", help="what a library holds, or what it saw in a photo")
    info.add_argument(
        "photo", nargs="?", metavar="PATH", help="a photo: its concepts and text (why it matched)"
    )
    info.add_argument("--json", action="store_true", help="print a JSON object")
    db_option(info)
    index.set_defaults(run=_run_index)
    search.set_defaults(run=_run_search)
    info.set_defaults(run=_run_info)
    for name in COMMAND_MODULES:
        importlib.import_module(f"picsearch.cli.{name}").register(commands)
    return parser


# Modules that add subcommands: each has ``register(commands)``, which adds its
# parsers with ``set_defaults(run=handler)``. They import nothing heavy at load time.
COMMAND_MODULES: tuple[str, ...] = (
    "export",
    "dups",
    "train",
    "serve",
    "spark",
    "check",
)


def db_option(parser: argparse.ArgumentParser) -> None:
    """The ``--db FILE`` option every command that opens a library takes."""
    parser.add_argument(
        "--db", metavar="FILE", help=f"library file (default: ${DB_ENV} or the user data folder)"
    )


def _run_index(args: argparse.Namespace) -> int:
    check_roots(args.paths)  # before the library file is made: a typo leaves no empty file
    with Library(args.db, model=args.model, index=args.index) as library:
        try:
            summary = library.index(
                args.paths,
                max_pixels=args.max_pixels,
                batch_size=args.batch_size,
                workers=args.workers,
                progress=not args.quiet,
                concepts=args.concepts,
            )
        except IndexInterrupted as stop:
            print(
                f"picsearch: interrupted: kept {stop.kept} photos indexed so far; "
                "run the same command to continue",
                file=sys.stderr,
            )
            return 130
        print(f"{library.path} (model '{library.model}'): {summary}", file=sys.stderr)
    return 0


def _run_search(args: argparse.Namespace) -> int:
    if args.searcher:
        return _print_searcher_results(args)
    with Library(args.db, create=False) as library:
        hits = library.search(
            args.query,
            image=args.image,
            like=args.like,
            k=args.k,
            folder=args.folder,
            after=args.after,
            before=args.before,
            people=args.people,
            has_text=args.has_text,
            bw=args.bw,
            color=args.color,
            text_only=args.text_only,
        )
        empty = not len(library)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2))
    else:
        _print_hits(hits)
    if empty:
        print("the library is empty: run 'picsearch index FOLDER' first", file=sys.stderr)
    elif not hits:
        print("no photo matched", file=sys.stderr)
    return 0


def _print_searcher_results(args: argparse.Namespace) -> int:
    from .export import search_searcher

    hits = search_searcher(args)  # the library's Hit: one shape for --db and --searcher
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2))
    else:
        _print_hits(hits)
    if not hits:
        print("no photo matched", file=sys.stderr)
    return 0


def _print_hits(hits: list[Hit]) -> None:
    for hit in hits:
        print(f"{hit.rank:>3}  {hit.score:.3f}  {printable(hit.path)}")


def _run_info(args: argparse.Namespace) -> int:
    if args.photo is not None:
        return _print_photo_concepts(args)
    with Library(args.db, create=False) as library:
        # What a library holds includes whether it is sound: a damaged part that
        # reading the counts does not touch must not go unsaid.
        ensure_sound(library.path)
        info = library.info()
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    dims = ", ".join(f"{space} {dim}" for space, dim in info.dims.items() if dim)
    print(f"library:  {printable(info.path)}")
    print(f"items:    {info.items}")
    print(f"model:    {info.model} ({info.model_id})")
    print(f"dims:     {dims}")
    print(f"on disk:  {info.size_bytes / 1e6:.1f} MB (schema {info.schema_version})")
    for space, index in info.indexes.items():
        recall = index["recall@10"]
        measured = "n/a" if recall is None else f"{recall:.3f}"
        print(
            f"index {space}: {index['backend']}, {index['size']} vectors, "
            f"{index['bytes_per_vector']:.0f} bytes each, recall@10 {measured} "
            f"({index['chosen_by']})"
        )
    return 0


def _print_photo_concepts(args: argparse.Namespace) -> int:
    with Library(args.db, create=False) as library:
        seen = library.concepts(args.photo)
    if args.json:
        print(json.dumps(seen, indent=2))
        return 0
    print(f"photo:     {printable(seen['path'])} (id {seen['id']})")
    print(f"detectors: {', '.join(seen['detectors']) or 'none (indexed with --concepts off)'}")
    for concept in seen["concepts"]:
        print(f'  {concept["confidence"]:.2f}  {concept["name"]:<18} "{concept["phrase"]}"')
    if seen["text"]:
        print("text:      " + printable(seen["text"].replace("\n", " / ")))
    return 0


class _StatusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"picsearch: {level}{printable(record.getMessage())}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it may be swapped, e.g. in tests)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _log_to_stderr() -> None:
    """Status (info) and warnings of the library, one line each, on stderr."""
    logger = logging.getLogger("picsearch")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_StatusFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``picsearch`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    _log_to_stderr()
    _never_fail_to_print()
    try:
        status = args.run(args)
        sys.stdout.flush()  # a reader that went away (| head) shows up here, not at exit
        return status
    except BrokenPipeError:
        _drop_stdout()
        return 1
    except PicsearchError as exc:
        return _fail(str(exc))
    except OSError as exc:
        # The file system said no (permissions, a full disk, a vanished folder).
        where = "" if exc.filename is None else f"{os.fsdecode(exc.filename)}: "
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("picsearch: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"picsearch: error: {printable(message)}", file=sys.stderr)
    return 1


def _never_fail_to_print() -> None:
    """A terminal or pipe whose encoding cannot show a character gets an escape instead
    of a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _drop_stdout() -> None:
    """After the reader of stdout went away: send what is left to /dev/null, so that
    Python's flush at exit does not fail again (the Python docs' recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (e.g. captured in tests)
        pass
