"""What the ``picsearch`` command prints, for every subcommand.

Results go to stdout (one line each, or ``--json``); status, warnings and
summaries go to stderr as ``picsearch: ...`` lines. Text from the file system is
shown through :func:`picsearch.display.printable`: one line per result whatever
a file name holds; ``--json`` keeps the exact path (undecodable bytes escaped).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ..display import printable
from ..library import Hit

__all__ = ["printable", "print_json", "print_hits", "status", "summary", "table", "log_to_stderr"]


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (the ``--json`` output of every command)."""
    print(json.dumps(data, indent=2))


def print_hits(
    hits: Sequence[Hit],
    *,
    as_json: bool,
    with_id: bool = False,
    understood: dict[str, Any] | None = None,
) -> None:
    """Search results: a JSON array, or a line each (rank, score, [id,] path), the weak
    matches after a line that says so. ``understood`` (what the words said of when and
    where) goes into each JSON hit, so the output stays an array."""
    if as_json:
        extra = {"understood": understood} if understood else {}
        print_json([hit.to_dict() | extra for hit in hits])
        return
    weak_shown = False
    for hit in hits:
        if hit.weak and not weak_shown:
            # Weak matches come last (they score lowest): one line sets them apart.
            print("--- weak matches: the closest photos, not good matches ---")
            weak_shown = True
        shown_id = f"{hit.id:>6}  " if with_id else ""
        print(f"{hit.rank:>3}  {hit.score:.3f}  {shown_id}{printable(hit.path)}")


def status(message: str) -> None:
    """One ``picsearch: ...`` line on stderr: a note, a warning, what to do next."""
    summary(f"picsearch: {message}")


def summary(text: str) -> None:
    """Text for people on stderr, as it is: what a command did ("lib.db: added 4, ..."),
    or why it found nothing. stdout stays for results."""
    print(text, file=sys.stderr)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns: the first (a name) to the left, the rest (figures) to
    the right, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines)


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


def log_to_stderr() -> None:
    """Status (info) and warnings of the library, one line each, on stderr."""
    logger = logging.getLogger("picsearch")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_StatusFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
