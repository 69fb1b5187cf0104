"""The ``picsearch`` command: parse, run one subcommand, and turn what went wrong
into one line. Results go to stdout; progress, warnings and summaries to stderr."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..encoders.model_checks import ALLOW_PICKLE_ENV
from ..errors import PicsearchError
from . import check, dups, export, index, info, models, search, serve, similar, spark, train
from .output import log_to_stderr, printable, status
from .parser import new_parser

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: The modules that add subcommands, in the order ``picsearch --help`` lists them.
#: Each has ``register(commands)``; none imports anything heavy at load time.
COMMAND_MODULES = (
    index,
    search,
    info,
    export,
    dups,
    similar,
    train,
    serve,
    spark,
    check,
    models,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``picsearch`` parser with every subcommand."""
    parser, commands = new_parser()
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``picsearch`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    log_to_stderr()
    _never_fail_to_print()
    if getattr(args, "allow_pickle", False):
        # In the environment, so that the server's and Spark's processes see it too.
        os.environ[ALLOW_PICKLE_ENV] = "1"
    try:
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away (| head) shows up here, not at exit
        return code
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
        status("interrupted")
        return 130


def _fail(message: str) -> int:
    status(f"error: {printable(message)}")
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
