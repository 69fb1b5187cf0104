"""``picsearch check [--repair]``: find damage in a library file, and repair what can be
rebuilt from what is intact (after a backup)."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog.check import NOT_A_LIBRARY, CheckReport, Problem, check_library
from ..errors import repair_command
from ..paths import default_db_path
from .output import print_json, printable, status
from .parser import Commands, add_command, db_option, json_option

if TYPE_CHECKING:
    from ..catalog.repair import RepairReport

__all__ = ["register"]

_HELP = "check a library file for damage (and repair it with --repair)"
_DESCRIPTION = (
    "Run SQLite's integrity check, the full-text index's check and "
    "picsearch's own checks; print each problem on one line; exit 1 if any. "
    "--repair first copies the library to LIBRARY.bak-<time>, then rebuilds what "
    "can be rebuilt from what is intact. Stop other programs using the library "
    "(picsearch serve, index) before repairing it."
)

#: Lines shown per kind of problem; the rest are counted.
_SHOWN_PER_KIND = 20


def register(commands: Commands) -> None:
    check = add_command(commands, "check", _run_check, help=_HELP, description=_DESCRIPTION)
    db_option(check)
    check.add_argument("--repair", action="store_true", help="back up the library, then repair it")
    json_option(check, "the report as JSON")


def _run_check(args: argparse.Namespace) -> int:
    path = default_db_path() if args.db is None else Path(args.db).expanduser()
    if args.repair:
        return _repair(path, args.json)
    report = check_library(path)
    if args.json:
        print_json(_check_dict(report))
    else:
        _print_problems(report.problems)
    for note in report.notes:
        status(f"note: {note}")
    shown = printable(str(path))
    if report.ok:
        status(f"{shown}: no problems found")
        return 0
    if NOT_A_LIBRARY in report.kinds():
        status(f"{shown} is not a picsearch library")
        return 1
    status(f"{shown}: {_count(report.problems)}; repair with: {printable(repair_command(path))}")
    return 1


def _repair(path: Path, as_json: bool) -> int:
    from ..library.repair import repair_library

    report = repair_library(path)
    shown = printable(str(path))
    if as_json:
        print_json(_repair_dict(report))
    else:
        for line in report.repaired:
            print(f"repaired: {printable(line)}")
        _print_problems(report.remaining)
    if report.backup is None:
        status(f"{shown}: no problems found, nothing to repair")
        return 0
    status(f"backup of the damaged file: {printable(str(report.backup))}")
    if report.ok:
        status(f"{shown}: repaired; it checks clean now")
        return 0
    status(f"{shown}: {_count(report.remaining)} left that cannot be repaired automatically")
    return 1


def _print_problems(problems: list[Problem]) -> None:
    per_kind: Counter[str] = Counter()
    for problem in problems:
        per_kind[problem.kind] += 1
        if per_kind[problem.kind] <= _SHOWN_PER_KIND:
            print(f"{problem.kind}: {printable(problem.message)}")
    for kind, count in per_kind.items():
        if count > _SHOWN_PER_KIND:
            print(f"{kind}: ... and {count - _SHOWN_PER_KIND} more")


def _count(problems: list[Problem]) -> str:
    return f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"


def _check_dict(report: CheckReport) -> dict[str, Any]:
    return {
        "path": str(report.path),
        "ok": report.ok,
        "problems": [asdict(p) for p in report.problems],
        "notes": report.notes,
    }


def _repair_dict(report: RepairReport) -> dict[str, Any]:
    return {
        "path": str(report.path),
        "backup": None if report.backup is None else str(report.backup),
        "repaired": report.repaired,
        "remaining": [asdict(p) for p in report.remaining],
        "ok": report.ok,
    }
