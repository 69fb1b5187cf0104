"""Move the non-keepers of near-duplicate groups to a folder, and undo such a move.

Nothing is ever deleted or overwritten, and the library follows its files.
Moves are planned first (a dry run stops there). Then, for each file:

1. its line (source, destination, size, SHA-256, item id) is appended to a JSON
   Lines log and flushed to disk: the intent is on record before anything changes;
2. the file is placed at its destination by a hard link, or across file systems
   by an exclusive copy checked against its SHA-256: it is now in both places;
3. the library's item takes the new path (same id, vectors, concepts and
   metadata) in one SQLite transaction with the ``moves`` journal row;
4. the old name is removed. If that fails, step 3 is reversed and the copy of
   step 2 removed.

So the library always names a place where the file is, whatever step a run is
killed at; a killed run leaves at worst a second name for a file in the move
folder, which ``undo_move(log)`` removes. ``undo_move`` moves everything back
the same way and refuses, file by file, where the moved file was changed since
or its old path is taken by another file.

Moved photos keep their folder structure under the target (relative to the
folders the moved photos share); a name that is taken, on disk or in the
library, gets " (1)", " (2)"...
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .catalog import Catalog
from .dups import Group
from .errors import InvalidInput

if TYPE_CHECKING:
    from .library import Library

__all__ = ["Move", "MoveReport", "UndoReport", "plan_moves", "move_duplicates", "undo_move"]

log = logging.getLogger(__name__)

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
    target_path = _absolute(target)
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
        destination = _unique_name(target_path / Path(member.path).relative_to(common), taken)
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
    target_path = _absolute(target)
    with _opened(library_file) as catalog:  # a library that cannot be opened stops it here
        journal = _start_log(target_path, log_path)
        report = MoveReport([], dry_run=False, log_path=str(journal))
        ledger = _Ledger(catalog, str(journal.absolute()))
        with open(journal, "a", encoding="utf-8") as handle:
            _append(handle, _header(target_path, library_file, len(planned)))
            for move in planned:
                reason = _move_one(move, handle, report, ledger)
                if reason:
                    report.skipped.append((move.source, reason))
                    log.warning("not moved: %s: %s", move.source, reason)
    return report


def undo_move(
    log_path: str | os.PathLike[str], *, library: str | os.PathLike[str] | None = None
) -> UndoReport:
    """Move every file of a move log back to where it was; refuse (per file) where unsafe.

    The library named in the log (or ``library``) takes the old paths back.
    """
    path = Path(log_path).expanduser()
    header, moves = _read_log(path)
    library_file = _absolute(library) if library is not None else _logged_library(header)
    report = UndoReport()
    with _opened(library_file) as catalog:
        ledger = _Ledger(catalog, str(path.absolute()))
        for move in reversed(moves):
            _undo_one(move, ledger, report)
    return report


# --------------------------------------------------------------------------- the library


class _Ledger:
    """The library's side of moving files: each path change and its journal row, committed
    together. Without a library it only moves files."""

    def __init__(self, catalog: Catalog | None, log_name: str) -> None:
        self.catalog, self.log_name = catalog, log_name

    def taken(self, path: Path) -> bool:
        """Whether the library has an item at this path (a name to leave free)."""
        return self.catalog is not None and self.catalog.has_path(os.fsencode(path))

    def follow(self, old: Path, new: Path, sha256: str, *, back: bool = False) -> None:
        """The file at ``old`` is now (also) at ``new``: its item takes the new path."""
        if self.catalog is None:
            return
        info = os.stat(new)
        old_bytes, new_bytes = os.fsencode(old), os.fsencode(new)
        with self.catalog.transaction():
            item = self.catalog.relocate(
                old_bytes, new_bytes, size=info.st_size, mtime_ns=info.st_mtime_ns
            )
            if item is not None:
                self.catalog.record_move(
                    log=self.log_name,
                    item_id=item,
                    old=old_bytes,
                    new=new_bytes,
                    sha256=sha256,
                    back=back,
                )


def _library_file(
    library: str | os.PathLike[str] | Library | None, groups: Sequence[Group]
) -> Path | None:
    """The library file to keep up to date: the one given, else the groups' own."""
    if library is not None:
        return _absolute(getattr(library, "path", library))
    named = {g.library for g in groups if g.library is not None}
    if len(named) > 1:
        raise InvalidInput(
            f"the groups come from {len(named)} libraries: move the groups of one at a time"
        )
    return _absolute(named.pop()) if named else None


def _logged_library(header: dict[str, Any]) -> Path | None:
    library = header.get("library")
    if library is None:
        return None
    if not os.path.exists(library):
        log.warning("the library %s of this move is gone: only the files move back", library)
        return None
    return Path(library)


@contextlib.contextmanager
def _opened(library_file: Path | None) -> Iterator[Catalog | None]:
    if library_file is None:
        yield None
        return
    catalog = Catalog(library_file, create=False)
    try:
        catalog.verify_writable()  # before any file moves: a read-only library stops it here
        yield catalog
    finally:
        catalog.close()


# --------------------------------------------------------------------------- moving


def _move_one(move: Move, handle: IO[str], report: MoveReport, ledger: _Ledger) -> str | None:
    """Log then move one file; returns why it was not moved, or None."""
    source, destination = Path(move.source), Path(move.destination)
    if not source.is_file():
        return "no longer there"
    destination = _unique_name(destination, set(), ledger.taken)
    logged = Move(str(source), str(destination), source.stat().st_size, _sha256(source), move.id)
    _append(handle, logged.to_dict())  # the intent is on disk before the file moves
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        _transfer(source, destination, logged.sha256, ledger)
    except OSError as exc:
        return f"cannot move it ({exc.strerror or exc})"
    except sqlite3.Error as exc:
        return f"the library could not take its new path, so it stays ({exc})"
    report.moves.append(logged)
    return None


def _undo_one(move: Move, ledger: _Ledger, report: UndoReport) -> None:
    """Move one logged file back, or say (in the report) why it is left where it is."""
    source, destination = Path(move.source), Path(move.destination)
    try:
        if not (destination.exists() or destination.is_symlink()):
            if source.is_file() and _sha256(source) == move.sha256:
                ledger.follow(destination, source, move.sha256, back=True)
                report.already.append(move)
            else:
                report.refused.append((move, f"{destination} is gone"))
            return
        if source.exists() or source.is_symlink():
            if _interrupted(move):
                # Killed between placing the file and removing its old name: it never left.
                ledger.follow(destination, source, move.sha256, back=True)
                _discard(destination, source, move.sha256)
                report.already.append(move)
            else:
                report.refused.append((move, f"{source} is taken again by another file"))
            return
        if destination.stat().st_size != move.size or _sha256(destination) != move.sha256:
            report.refused.append((move, f"{destination} was changed since it was moved"))
            return
        source.parent.mkdir(parents=True, exist_ok=True)
        _transfer(destination, source, move.sha256, ledger, back=True)
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
    return _sha256(source) == move.sha256 == _sha256(destination)


def _transfer(old: Path, new: Path, sha256: str, ledger: _Ledger, *, back: bool = False) -> None:
    """Move a file so that the library always names a place where it is (module docstring)."""
    _place(old, new, sha256)
    try:
        ledger.follow(old, new, sha256, back=back)
    except (OSError, sqlite3.Error):
        _discard(new, old, sha256)
        raise
    try:
        os.unlink(old)
    except OSError:
        # The old folder will not let the file go: the library and the copy go back.
        # Should the library refuse even that, both names stay, and it names one of them.
        with contextlib.suppress(OSError, sqlite3.Error):
            ledger.follow(new, old, sha256, back=not back)
            _discard(new, old, sha256)
        raise


def _place(source: Path, destination: Path, sha256: str) -> None:
    """Put the file at ``destination`` too, never overwriting: a hard link, or an exclusive
    copy checked against its hash."""
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


def _discard(copy: Path, original: Path, sha256: str) -> None:
    """Remove a second name or copy that this module made, never anything else."""
    with contextlib.suppress(OSError):
        if os.path.samefile(copy, original) or _sha256(copy) == sha256 == _sha256(original):
            os.unlink(copy)


def _unique_name(
    path: Path, taken: set[Path], also_taken: Callable[[Path], bool] = lambda _: False
) -> Path:
    candidate, number = path, 0
    while (
        candidate in taken or candidate.exists() or candidate.is_symlink() or also_taken(candidate)
    ):
        number += 1
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
    return candidate


def _absolute(path: str | os.PathLike[str]) -> Path:
    """Absolute and normalised: the form the library stores paths in."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _new_log_path(target: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return _unique_name(target / f"picsearch-move-{stamp}.jsonl", set())


def _with_size(move: Move) -> Move | None:
    try:
        return Move(move.source, move.destination, os.stat(move.source).st_size, id=move.id)
    except OSError:
        return None


# --------------------------------------------------------------------------- the log


def _start_log(target: Path, log_path: str | os.PathLike[str] | None) -> Path:
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


def _header(target: Path, library_file: Path | None, planned: int) -> dict[str, object]:
    return {
        "format": LOG_FORMAT,
        "version": LOG_VERSION,
        "target": str(target),
        "library": None if library_file is None else str(library_file),
        "created": time.time(),
        "planned": planned,
    }


def _append(handle: IO[str], record: dict[str, object]) -> None:
    handle.write(json.dumps(record, default=str) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_log(path: Path) -> tuple[dict[str, Any], list[Move]]:
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
