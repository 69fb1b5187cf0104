"""Move the non-keepers of near-duplicate groups to a folder (``undo_move`` moves them back).

Nothing is ever deleted or overwritten, and the library follows its files.
Moves are planned first (a dry run stops there). Then, for each file, its line
(source, destination, size, SHA-256, item id) is appended to the move log and
flushed to disk (``picsearch.dups.move_log``): the intent is on record before
anything changes; then the file moves so that the library always names a place
where it is, whatever step a run is killed at (``picsearch.dups.transfer``). A
killed run leaves at worst a second name for a file in the move folder, which
``undo_move(log)`` removes.

Moved photos keep their folder structure under the target (relative to the
folders the moved photos share); a name that is taken, on disk or in the
library, gets " (1)", " (2)"...
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..errors import InvalidInput
from .groups import Group
from .move_log import Move, append_record, log_header, start_log
from .transfer import Ledger, absolute, file_sha256, opened_catalog, transfer, unique_name

if TYPE_CHECKING:
    from ..library import Library

__all__ = ["MoveReport", "plan_moves", "move_duplicates"]

log = logging.getLogger(__name__)


@dataclass
class MoveReport:
    """What a move did (or, for a dry run, would do)."""

    moves: list[Move]
    dry_run: bool
    log_path: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)

    @property
    def total_size(self) -> int:
        return sum(m.size for m in self.moves)

    def to_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "log": self.log_path,
            "moves": [m.to_dict() for m in self.moves],
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
        }


def plan_moves(groups: Sequence[Group], target: str | os.PathLike[str]) -> list[Move]:
    """Where each non-keeper would go: its path relative to the shared folders, under target."""
    target_path = absolute(target)
    members = [m for g in groups for m in g.members if m.id != g.keeper]
    for member in members:
        if target_path in Path(member.path).parents:
            log.warning("left in place: %s is already under the move-to folder", member.path)
    members = [m for m in members if target_path not in Path(m.path).parents]
    if not members:
        return []
    common = Path(os.path.commonpath([os.path.dirname(m.path) for m in members]))
    taken: set[Path] = set()
    moves = []
    for member in members:
        destination = unique_name(target_path / Path(member.path).relative_to(common), taken)
        taken.add(destination)
        source = os.path.abspath(member.path)  # as the library has it
        moves.append(Move(source=source, destination=str(destination), id=member.id))
    return moves


def move_duplicates(
    groups: Sequence[Group],
    target: str | os.PathLike[str],
    *,
    dry_run: bool = True,
    log_path: str | os.PathLike[str] | None = None,
    library: str | os.PathLike[str] | Library | None = None,
) -> MoveReport:
    """Move every non-keeper into ``target`` (only plan it when ``dry_run``); returns a report.

    The library (default: the one the groups were found in) follows each file:
    its item keeps its id and takes the new path. The log goes to ``log_path``
    (default: a new time-stamped file in ``target``).
    """
    planned = plan_moves(groups, target)
    if not planned:
        return MoveReport([], dry_run=dry_run)
    if dry_run:
        sized = [_with_size(m) for m in planned]
        return MoveReport([m for m in sized if m is not None], dry_run=True)
    library_file = _library_file(library, groups)
    target_path = absolute(target)
    with opened_catalog(library_file) as catalog:  # a library that cannot be opened stops it here
        journal = start_log(target_path, log_path)
        report = MoveReport([], dry_run=False, log_path=str(journal))
        ledger = Ledger(catalog, str(journal.absolute()))
        with open(journal, "a", encoding="utf-8") as handle:
            append_record(handle, log_header(target_path, library_file, len(planned)))
            for move in planned:
                reason = _move_one(move, handle, report, ledger)
                if reason:
                    report.skipped.append((move.source, reason))
                    log.warning("not moved: %s: %s", move.source, reason)
    return report


def _library_file(
    library: str | os.PathLike[str] | Library | None, groups: Sequence[Group]
) -> Path | None:
    """The library file to keep up to date: the one given, else the groups' own."""
    if isinstance(library, str | os.PathLike):
        return absolute(library)
    if library is not None:
        return absolute(library.path)
    named = {g.library for g in groups if g.library is not None}
    if len(named) > 1:
        raise InvalidInput(
            f"the groups come from {len(named)} libraries: move the groups of one at a time"
        )
    return absolute(named.pop()) if named else None


def _move_one(move: Move, handle: IO[str], report: MoveReport, ledger: Ledger) -> str | None:
    """Log then move one file; returns why it was not moved, or None."""
    source, destination = Path(move.source), Path(move.destination)
    if not source.is_file():
        return "no longer there"
    destination = unique_name(destination, set(), ledger.taken)
    logged = Move(
        str(source), str(destination), source.stat().st_size, file_sha256(source), move.id
    )
    append_record(handle, logged.to_dict())  # the intent is on disk before the file moves
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        transfer(source, destination, logged.sha256, ledger)
    except OSError as exc:
        return f"cannot move it ({exc.strerror or exc})"
    except sqlite3.Error as exc:
        return f"the library could not take its new path, so it stays ({exc})"
    report.moves.append(logged)
    return None


def _with_size(move: Move) -> Move | None:
    try:
        return Move(move.source, move.destination, os.stat(move.source).st_size, id=move.id)
    except OSError:
        return None
