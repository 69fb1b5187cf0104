"""``picsearch dups``: near-duplicate groups (text, JSON, HTML; move and undo), and
``picsearch similar``: more photos like one image or stored photo."""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    from .entry import db_option

    dups = commands.add_parser(
        "dups",
        help="find near-duplicate photos (index FOLDERs first when given)",
        description="Group near-duplicate photos and suggest a keeper in each group "
        "(largest resolution, then largest file, then oldest).",
    )
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
    dups.add_argument("--json", action="store_true", help="print the groups as JSON")
    dups.add_argument("--html", metavar="FILE", help="write a report with thumbnails")
    dups.add_argument(
        "--move-to", metavar="DIR", help="move the non-keepers into DIR (a dry run without --yes)"
    )
    dups.add_argument("--yes", action="store_true", help="really move (with --move-to)")
    dups.add_argument("--undo", metavar="LOG", help="move back the files of a move log")
    dups.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dups.set_defaults(run=_run_dups)

    similar = commands.add_parser(
        "similar", help="photos most like an image file or a stored photo id"
    )
    similar.add_argument("target", metavar="IMAGE_OR_ID", help="an image file, or a photo id")
    db_option(similar)
    similar.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    similar.add_argument("--json", action="store_true", help="print a JSON array")
    similar.set_defaults(run=_run_similar)


def _run_dups(args: argparse.Namespace) -> int:
    from ..errors import InvalidInput

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
        from ..dups_report import write_html_report

        path = write_html_report(groups, args.html, threshold=threshold)
        print(f"picsearch: report written to {path}", file=sys.stderr)
    moved = _move(groups, args.move_to, args.yes) if args.move_to else None
    if args.json:
        out = {"threshold": threshold, "groups": [g.to_dict() for g in groups]}
        if moved is not None:
            out["move"] = moved.to_dict()
        print(json.dumps(out, indent=2))
    else:
        _print_groups(groups)
        if moved is not None:
            _print_moves(moved)
    _summary(groups)
    if moved is not None:
        _move_status(moved, args.move_to)
    return 0


def _move_status(report, target: str) -> None:
    from ..dups_report import human_size

    if not report.moves:
        print("picsearch: nothing to move", file=sys.stderr)
        return
    size = f"{len(report.moves)} files ({human_size(report.total_size)})"
    if report.dry_run:
        print(
            f"picsearch: dry run: {size} would move to {_show(target)}; add --yes to move them",
            file=sys.stderr,
        )
    else:
        print(
            f"picsearch: moved {size} to {_show(target)}; undo with: "
            f"picsearch dups --undo {_show(str(report.log_path))}",
            file=sys.stderr,
        )


def _find(args: argparse.Namespace):
    from ..dups import DEFAULT_THRESHOLD, find_duplicates
    from ..errors import InvalidInput
    from ..library import Library

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if args.move_to and args.folders:
        target = os.path.realpath(os.path.expanduser(args.move_to))
        for folder in args.folders:
            root = os.path.realpath(os.path.expanduser(folder))
            if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
                raise InvalidInput(
                    f"--move-to {args.move_to} is inside {folder}: the next index run would "
                    "add the moved photos back; choose a folder outside it"
                )
    with Library(args.db, model=args.model, create=bool(args.folders)) as library:
        if args.folders:
            summary = library.index(args.folders, progress=not args.quiet)
            print(f"{library.path}: {summary}", file=sys.stderr)
        groups = find_duplicates(library, threshold=threshold, turned=args.turned)
    return groups, threshold


def _move(groups, target: str, confirmed: bool):
    from ..dups_move import move_duplicates

    return move_duplicates(groups, target, dry_run=not confirmed)


def _undo(log_path: str, as_json: bool) -> int:
    from ..dups_move import undo_move

    report = undo_move(log_path)
    if as_json:
        print(
            json.dumps(
                {
                    "restored": [m.to_dict() for m in report.restored],
                    "already": [m.to_dict() for m in report.already],
                    "refused": [{**m.to_dict(), "reason": r} for m, r in report.refused],
                },
                indent=2,
            )
        )
    for move, reason in report.refused:
        print(f"picsearch: refused: {_show(move.source)}: {reason}", file=sys.stderr)
    print(
        f"picsearch: moved back {len(report.restored)} files, {len(report.already)} were "
        f"already in place, refused {len(report.refused)}",
        file=sys.stderr,
    )
    return 1 if report.refused else 0


def _print_groups(groups) -> None:
    for number, group in enumerate(groups, 1):
        print(f"group {number}: {len(group.members)} photos")
        to_keeper = {
            (b if a == group.keeper else a): s for a, b, s in group.pairs if group.keeper in (a, b)
        }
        for member in group.members:
            mark = " keep" if member.id == group.keeper else f"{to_keeper.get(member.id, 0):.3f}"
            size = f"{member.width}x{member.height}"
            print(f"  {mark:>5}  {size:>11}  {member.size:>10,}  {_show(member.path)}")


def _print_moves(report) -> None:
    verb = "would move" if report.dry_run else "moved"
    for move in report.moves:
        print(f"{verb}: {_show(move.source)} -> {_show(move.destination)}")


def _summary(groups) -> None:
    from ..dups_report import human_size

    extra = sum(len(g.members) - 1 for g in groups)
    size = sum(m.size for g in groups for m in g.members if m.id != g.keeper)
    print(
        f"picsearch: {len(groups)} groups, {extra} photos besides the keepers ({human_size(size)})",
        file=sys.stderr,
    )


def _run_similar(args: argparse.Namespace) -> int:
    from ..errors import InvalidInput
    from ..library import Library

    target = args.target
    like = int(target) if target.isdigit() and not os.path.exists(target) else None
    if like is None and not os.path.exists(os.path.expanduser(target)):
        raise InvalidInput(f"{target} is neither an image file nor a photo id of the library")
    with Library(args.db, create=False) as library:
        if like is not None:
            library.get(like)  # an unknown id is an error, not an empty result
            hits = library.search(like=like, k=args.k)
        else:
            hits = library.search(image=target, k=args.k)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2))
    else:
        for hit in hits:
            print(f"{hit.rank:>3}  {hit.score:.3f}  {hit.id:>6}  {_show(hit.path)}")
    return 0


def _show(path: str) -> str:
    from .output import printable

    return printable(path)
