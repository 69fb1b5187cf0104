"""The ``picsearch`` parser, and the options several commands share.

Each command module has ``register(commands)``, which adds its subcommands with
:func:`add_command` and their options (the shared ones through the functions
here, so that ``--db`` or ``--json`` read alike everywhere).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..images import DEFAULT_MAX_PIXELS
from ..paths import DB_ENV
from ..version import __version__

__all__ = [
    "Commands",
    "Run",
    "CommandParser",
    "new_parser",
    "add_command",
    "db_option",
    "json_option",
    "k_option",
    "max_pixels_option",
    "encoder_batch_option",
    "quiet_option",
]

#: What a subcommand runs with the parsed arguments; it returns the exit status.
Run = Callable[[argparse.Namespace], int]


class Commands(Protocol):
    """Where subcommands are added: what ``ArgumentParser.add_subparsers`` returns."""

    @property
    def choices(self) -> Mapping[str, argparse.ArgumentParser]: ...

    def add_parser(
        self, name: str, *, help: str | None = ..., description: str | None = ...
    ) -> argparse.ArgumentParser: ...


class CommandParser(argparse.ArgumentParser):
    """The top-level parser: an unknown option after a command is reported with that
    command's usage (argparse would show the top-level one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The subcommands' parsers by name (see :func:`new_parser`).
        self.command_parsers: Mapping[str, argparse.ArgumentParser] = {}

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
        parser = self.command_parsers.get(command or "")
        if parser is None or command not in words or unknown not in words:
            return parser or self
        return self if words.index(unknown) < words.index(command) else parser


def new_parser() -> tuple[CommandParser, Commands]:
    """The ``picsearch`` parser without subcommands, and where to add them."""
    parser = CommandParser(
        prog="picsearch", description="Find photos by words or by example, offline."
    )
    parser.add_argument("--version", action="version", version=f"picsearch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.command_parsers = commands.choices
    return parser, commands


def add_command(
    commands: Commands, name: str, run: Run, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand's parser; parsing its words sets ``args.run`` to ``run``."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.set_defaults(run=run)
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="let model folders load pickled weights (.bin, .pt): only for models you trust",
    )
    return parser


def db_option(parser: argparse.ArgumentParser) -> None:
    """The ``--db FILE`` option every command that opens a library takes."""
    parser.add_argument(
        "--db", metavar="FILE", help=f"library file (default: ${DB_ENV} or the user data folder)"
    )


def json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` (e.g. "a JSON array") instead of lines for people."""
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def k_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")


def max_pixels_option(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels``: images larger than this are skipped, not decoded."""
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip images with more pixels than this (default {DEFAULT_MAX_PIXELS:,})",
    )


def encoder_batch_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=32, help="images per encoder batch")


def quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
