"""Undo a move: every file of a move log back where it was, refused file by file where
that is unsafe (the moved file was changed since, or its old path is taken by another
file); the library takes the old paths back."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .move_log import Move, read_log
from .transfer import Ledger, absolute, discard, file_sha256, opened_catalog, transfer

__all__ = ["UndoReport", "undo_move"]

log = logging.getLogger(__name__)


@dataclass
class UndoReport:
    """Files moved back, files already in place, and refusals with their reasons."""

    restored: list[Move] = field(default_factory=list)
    already: list[Move] = field(default_factory=list)
    refused: list[tuple[Move, str]] = field(default_factory=list)


def undo_move(
    log_path: str | os.PathLike[str], *, library: str | os.PathLike[str] | None = None
) -> UndoReport:
    """Move every file of a move log back to where it was; refuse (per file) where unsafe.

    The library named in the log (or ``library``) takes the old paths back.
    """
    path = Path(log_path).expanduser()
    header, moves = read_log(path)
    library_file = absolute(library) if library is not None else _logged_library(header)
    report = UndoReport()
    with opened_catalog(library_file) as catalog:
        ledger = Ledger(catalog, str(path.absolute()))
        for move in reversed(moves):
            _undo_one(move, ledger, report)
    return report


def _logged_library(header: dict[str, Any]) -> Path | None:
    library = header.get("library")
    if library is None:
        return None
    if not os.path.exists(library):
        log.warning("the library %s of this move is gone: only the files move back", library)
        return None
    return Path(library)


def _undo_one(move: Move, ledger: Ledger, report: UndoReport) -> None:
    """Move one logged file back, or say (in the report) why it is left where it is."""
    source, destination = Path(move.source), Path(move.destination)
    try:
        if not (destination.exists() or destination.is_symlink()):
            if source.is_file() and file_sha256(source) == move.sha256:
                ledger.follow(destination, source, move.sha256, back=True)
                report.already.append(move)
            else:
                report.refused.append((move, f"{destination} is gone"))
            return
        if source.exists() or source.is_symlink():
            if _interrupted(move):
                # Killed between placing the file and removing its old name: it never left.
                ledger.follow(destination, source, move.sha256, back=True)
                discard(destination, source, move.sha256)
                report.already.append(move)
            else:
                report.refused.append((move, f"{source} is taken again by another file"))
            return
        if destination.stat().st_size != move.size or file_sha256(destination) != move.sha256:
            report.refused.append((move, f"{destination} was changed since it was moved"))
            return
        source.parent.mkdir(parents=True, exist_ok=True)
        transfer(destination, source, move.sha256, ledger, back=True)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or exc
        report.refused.append((move, f"cannot move it back ({reason})"))
        return
    report.restored.append(move)


def _interrupted(move: Move) -> bool:
    """Whether a move's old and new names both hold the moved bytes."""
    source, destination = Path(move.source), Path(move.destination)
    if not (source.is_file() and destination.is_file()):
        return False
    if os.path.samefile(source, destination):
        return True
    return file_sha256(source) == move.sha256 == file_sha256(destination)
