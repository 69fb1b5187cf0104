"""The move log: a JSON Lines file with a header, then one line per file moved.

Each line (source, destination, size, SHA-256, item id) is appended and flushed
to disk before its file moves, so the intent is on record before anything
changes; an undo reads the log back.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidInput
from .transfer import unique_name

__all__ = [
    "LOG_FORMAT",
    "LOG_VERSION",
    "Move",
    "start_log",
    "log_header",
    "append_record",
    "read_log",
]

LOG_FORMAT = "picsearch-move-log"

#: 2 names the library in the header and each item's id in its line; 1 is still read.
LOG_VERSION = 2


@dataclass(frozen=True)
class Move:
    """One file to move (``size``, ``sha256`` and ``id`` are filled in when it is logged)."""

    source: str
    destination: str
    size: int = 0
    sha256: str = ""
    id: int = 0  # the library item of the file (0: unknown)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def start_log(target: Path, log_path: str | os.PathLike[str] | None) -> Path:
    """A new, empty move log (never an existing file), in ``target`` unless given."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"cannot make the move-to folder {target} ({exc.strerror or exc}): "
            "choose a folder you can write to"
        ) from None
    journal = Path(log_path) if log_path is not None else _new_log_path(target)
    try:
        with open(journal, "x", encoding="utf-8"):
            pass
    except FileExistsError:
        raise InvalidInput(f"{journal} exists: give a new file for the move log") from None
    except OSError as exc:
        raise InvalidInput(
            f"cannot write the move log {journal} ({exc.strerror or exc}): "
            "choose a folder you can write to"
        ) from None
    return journal


def _new_log_path(target: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return unique_name(target / f"picsearch-move-{stamp}.jsonl", set())


def log_header(target: Path, library_file: Path | None, planned: int) -> dict[str, object]:
    return {
        "format": LOG_FORMAT,
        "version": LOG_VERSION,
        "target": str(target),
        "library": None if library_file is None else str(library_file),
        "created": time.time(),
        "planned": planned,
    }


def append_record(handle: IO[str], record: dict[str, object]) -> None:
    handle.write(json.dumps(record, default=str) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def read_log(path: Path) -> tuple[dict[str, Any], list[Move]]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidInput(
            f"no move log at {path}: give the picsearch-move-*.jsonl file"
            " that --move-to wrote in its folder"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the move log {path} ({exc})") from None
    try:
        header, *records = [json.loads(line) for line in lines if line.strip()]
        if header.get("format") != LOG_FORMAT:
            raise ValueError("not a picsearch move log")
        moves = [
            Move(r["source"], r["destination"], int(r["size"]), r["sha256"], int(r.get("id", 0)))
            for r in records
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{path} is not a picsearch move log ({exc})") from None
    return header, moves
