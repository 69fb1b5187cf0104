"""Move the non-keepers of near-duplicate groups to a folder, and undo such a move.

Nothing is ever deleted or overwritten. Moves are planned first (a dry run
stops there); each move is written to a JSON Lines log, and flushed to disk,
*before* the file moves, so a log always covers every file that left its place.
A file moves by a hard link plus unlink on one file system, or by an exclusive
copy that is checked against its SHA-256 before the source goes, across file
systems. ``undo_move(log)`` moves everything back and refuses, file by file,
where the moved file was changed since or its old path is taken again.

Moved photos keep their folder structure under the target (relative to the
folders the moved photos share); a name that is taken gets " (1)", " (2)"...
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .dups import Group
from .errors import InvalidInput

__all__ = ["Move", "MoveReport", "UndoReport", "plan_moves", "move_duplicates", "undo_move"]

log = logging.getLogger(__name__)

LOG_FORMAT = "picsearch-move-log"
LOG_VERSION = 1


@dataclass(frozen=True)
class Move:
    """One file to move (``size`` and ``sha256`` are filled in when it is logged)."""

    source: str
    destination: str
    size: int = 0
    sha256: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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


@dataclass
class UndoReport:
    """Files moved back, files already in place, and refusals with their reasons."""

    restored: list[Move] = field(default_factory=list)
    already: list[Move] = field(default_factory=list)
    refused: list[tuple[Move, str]] = field(default_factory=list)


def plan_moves(groups: Sequence[Group], target: str | os.PathLike[str]) -> list[Move]:
    """Where each non-keeper would go: its path relative to the shared folders, under target."""
    target_path = Path(target).expanduser().absolute()
    sources = [Path(m.path).absolute() for g in groups for m in g.members if m.id != g.keeper]
    if not sources:
        return []
    inside = [s for s in sources if target_path in s.parents]
    for source in inside:
        log.warning("left in place: %s is already under the move-to folder", source)
    sources = [s for s in sources if target_path not in s.parents]
    if not sources:
        return []
    common = Path(os.path.commonpath([s.parent for s in sources]))
    taken: set[Path] = set()
    moves = []
    for source in sources:
        destination = _unique_name(target_path / source.relative_to(common), taken)
        taken.add(destination)
        moves.append(Move(source=str(source), destination=str(destination)))
    return moves


def move_duplicates(
    groups: Sequence[Group],
    target: str | os.PathLike[str],
    *,
    dry_run: bool = True,
    log_path: str | os.PathLike[str] | None = None,
) -> MoveReport:
    """Move every non-keeper into ``target`` (only plan it when ``dry_run``); returns a report.

    The log goes to ``log_path`` (default: a new time-stamped file in ``target``).
    """
    planned = plan_moves(groups, target)
    if not planned:
        return MoveReport([], dry_run=dry_run)
    if dry_run:
        sized = [_with_size(m) for m in planned]
        return MoveReport([m for m in sized if m is not None], dry_run=True)
    target_path = Path(target).expanduser().absolute()
    target_path.mkdir(parents=True, exist_ok=True)
    journal = Path(log_path) if log_path is not None else _new_log_path(target_path)
    report = MoveReport([], dry_run=False, log_path=str(journal))
    with open(journal, "x", encoding="utf-8") as handle:
        _append(
            handle,
            {
                "format": LOG_FORMAT,
                "version": LOG_VERSION,
                "target": str(target_path),
                "created": time.time(),
                "planned": len(planned),
            },
        )
        for move in planned:
            reason = _move_one(move, handle, report)
            if reason:
                report.skipped.append((move.source, reason))
                log.warning("not moved: %s: %s", move.source, reason)
    return report


def undo_move(log_path: str | os.PathLike[str]) -> UndoReport:
    """Move every file of a move log back to where it was; refuse (per file) where unsafe."""
    report = UndoReport()
    for move in reversed(_read_log(Path(log_path).expanduser())):
        source, destination = Path(move.source), Path(move.destination)
        if not destination.exists():
            if source.exists() and _sha256(source) == move.sha256:
                report.already.append(move)
            else:
                report.refused.append((move, f"{destination} is gone"))
            continue
        if source.exists() or source.is_symlink():
            report.refused.append((move, f"{source} is taken again by another file"))
            continue
        if destination.stat().st_size != move.size or _sha256(destination) != move.sha256:
            report.refused.append((move, f"{destination} was changed since it was moved"))
            continue
        source.parent.mkdir(parents=True, exist_ok=True)
        _relocate(destination, source, move.sha256)
        report.restored.append(move)
    return report


# --------------------------------------------------------------------------- moving


def _move_one(move: Move, handle, report: MoveReport) -> str | None:
    """Log then move one file; returns why it was not moved, or None."""
    source, destination = Path(move.source), Path(move.destination)
    if not source.is_file():
        return "no longer there"
    if destination.exists() or destination.is_symlink():
        destination = _unique_name(destination, set())
    logged = Move(str(source), str(destination), source.stat().st_size, _sha256(source))
    _append(handle, logged.to_dict())
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        _relocate(source, destination, logged.sha256)
    except OSError as exc:
        return f"cannot move it ({exc.strerror or exc})"
    report.moves.append(logged)
    return None


def _relocate(source: Path, destination: Path, sha256: str) -> None:
    """Move without ever overwriting: hard link + unlink, or an exclusive checked copy."""
    try:
        os.link(source, destination)  # fails if destination exists
    except FileExistsError:
        raise
    except OSError:  # another file system, or links not supported
        with open(source, "rb") as src, open(destination, "xb") as dst:
            shutil.copyfileobj(src, dst)
        shutil.copystat(source, destination)
        if _sha256(destination) != sha256:
            os.unlink(destination)  # our own incomplete copy, never the user's file
            raise OSError(f"the copy of {source} does not match it") from None
    os.unlink(source)


def _unique_name(path: Path, taken: set[Path]) -> Path:
    candidate, number = path, 0
    while candidate in taken or candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
    return candidate


def _new_log_path(target: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return _unique_name(target / f"picsearch-move-{stamp}.jsonl", set())


def _with_size(move: Move) -> Move | None:
    try:
        return Move(move.source, move.destination, os.stat(move.source).st_size)
    except OSError:
        return None


def _append(handle, record: dict[str, object]) -> None:
    handle.write(json.dumps(record, default=str) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_log(path: Path) -> list[Move]:
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
        return [Move(r["source"], r["destination"], int(r["size"]), r["sha256"]) for r in records]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{path} is not a picsearch move log ({exc})") from None
