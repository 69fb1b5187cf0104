"""``picsearch dups``: near-duplicate groups (text, JSON, HTML; move and undo)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..library import Library
from .output import print_json, printable, status, summary
from .parser import Commands, add_command, db_option, json_option, quiet_option

if TYPE_CHECKING:
    from ..dups import Group, MoveReport

__all__ = ["register"]

_HELP = "find near-duplicate photos (index FOLDERs first when given)"
_DESCRIPTION = (
    "Group near-duplicate photos and suggest a keeper in each group "
    "(largest resolution, then largest file, then oldest)."
)


def register(commands: Commands) -> None:
    dups = add_command(commands, "dups", _run_dups, help=_HELP, description=_DESCRIPTION)
    dups.add_argument("folders", nargs="*", metavar="FOLDER", help="index these folders first")
    db_option(dups)
    dups.add_argument("--model", help="model of a new library (default: default)")
    dups.add_argument(
        "--threshold",
        type=float,
        help="cosine similarity at which photos are near-duplicates (default: measured, "
        "see docs/dups.md)",
    )
    dups.add_argument(
        "--turned",
        action="store_true",
        help="also find copies turned by 90/180/270 degrees (reads and embeds each photo "
        "three more times)",
    )
    json_option(dups, "the groups as JSON")
    dups.add_argument("--html", metavar="FILE", help="write a report with thumbnails")
    dups.add_argument(
        "--move-to", metavar="DIR", help="move the non-keepers into DIR (a dry run without --yes)"
    )
    dups.add_argument("--yes", action="store_true", help="really move (with --move-to)")
    dups.add_argument("--undo", metavar="LOG", help="move back the files of a move log")
    quiet_option(dups)


def _run_dups(args: argparse.Namespace) -> int:
    if args.undo:
        given = [
            f for f in ("folders", "move_to", "html", "threshold", "turned") if getattr(args, f)
        ]
        if given:
            raise InvalidInput("--undo LOG takes no other options: run it on its own")
        return _undo(args.undo, args.json)
    if args.yes and not args.move_to:
        raise InvalidInput("--yes confirms a move: give --move-to DIR too")
    groups, threshold = _find(args)
    if args.html:
        from ..dups import write_html_report

        path = write_html_report(groups, args.html, threshold=threshold)
        status(f"report written to {path}")
    moved = _move(groups, args.move_to, args.yes) if args.move_to else None
    if args.json:
        out = {"threshold": threshold, "groups": [g.to_dict() for g in groups]}
        if moved is not None:
            out["move"] = moved.to_dict()
        print_json(out)
    else:
        _print_groups(groups)
        if moved is not None:
            _print_moves(moved)
    _totals(groups)
    if moved is not None:
        _move_status(moved, args.move_to)
    return 0


def _move_status(report: MoveReport, target: str) -> None:
    from ..dups import human_size

    if not report.moves:
        status("nothing to move")
        return
    size = f"{len(report.moves)} files ({human_size(report.total_size)})"
    if report.dry_run:
        status(f"dry run: {size} would move to {printable(target)}; add --yes to move them")
    else:
        status(
            f"moved {size} to {printable(target)}; undo with: "
            f"picsearch dups --undo {printable(str(report.log_path))}"
        )


def _check_move_target(move_to: str, folders: list[str]) -> None:
    """A move into a folder being searched for duplicates would not take the copies out
    of it: they would be found, and offered for moving, on every later run."""
    target = os.path.realpath(os.path.expanduser(move_to))
    for folder in folders:
        root = os.path.realpath(os.path.expanduser(folder))
        if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
            raise InvalidInput(
                f"--move-to {move_to} is inside {folder}: the moved copies would stay in "
                "that folder and be found again; choose a folder outside it"
            )


def _find(args: argparse.Namespace) -> tuple[list[Group], float]:
    from ..dups import DEFAULT_THRESHOLD, find_duplicates

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if args.move_to and args.folders:
        _check_move_target(args.move_to, args.folders)
    with Library(args.db, model=args.model, create=bool(args.folders)) as library:
        if args.folders:
            found = library.index(args.folders, progress=not args.quiet)
            summary(f"{library.path}: {found}")
        groups = find_duplicates(library, threshold=threshold, turned=args.turned)
    return groups, threshold


def _move(groups: list[Group], target: str, confirmed: bool) -> MoveReport:
    from ..dups import move_duplicates

    return move_duplicates(groups, target, dry_run=not confirmed)


def _undo(log_path: str, as_json: bool) -> int:
    from ..dups import undo_move

    report = undo_move(log_path)
    if as_json:
        print_json(
            {
                "restored": [m.to_dict() for m in report.restored],
                "already": [m.to_dict() for m in report.already],
                "refused": [{**m.to_dict(), "reason": r} for m, r in report.refused],
            }
        )
    for move, reason in report.refused:
        status(f"refused: {printable(move.source)}: {reason}")
    status(
        f"moved back {len(report.restored)} files, {len(report.already)} were "
        f"already in place, refused {len(report.refused)}"
    )
    return 1 if report.refused else 0


def _print_groups(groups: list[Group]) -> None:
    for number, group in enumerate(groups, 1):
        print(f"group {number}: {len(group.members)} photos")
        to_keeper = {
            (b if a == group.keeper else a): s for a, b, s in group.pairs if group.keeper in (a, b)
        }
        for member in group.members:
            mark = " keep" if member.id == group.keeper else f"{to_keeper.get(member.id, 0):.3f}"
            size = f"{member.width}x{member.height}"
            print(f"  {mark:>5}  {size:>11}  {member.size:>10,}  {printable(member.path)}")


def _print_moves(report: MoveReport) -> None:
    verb = "would move" if report.dry_run else "moved"
    for move in report.moves:
        print(f"{verb}: {printable(move.source)} -> {printable(move.destination)}")


def _totals(groups: list[Group]) -> None:
    from ..dups import human_size

    extra = sum(len(g.members) - 1 for g in groups)
    size = sum(m.size for g in groups for m in g.members if m.id != g.keeper)
    status(f"{len(groups)} groups, {extra} photos besides the keepers ({human_size(size)})")
