"""``picsearch check [--repair]``: find damage in a library file, and repair what can be
rebuilt from what is intact (after a backup)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..check import NOT_A_LIBRARY, CheckReport, Problem, check_library
from ..errors import repair_command
from ..paths import default_db_path
from .output import printable

__all__ = ["register"]

#: Lines shown per kind of problem; the rest are counted.
_SHOWN_PER_KIND = 20


def register(commands: argparse._SubParsersAction) -> None:
    from .entry import db_option

    check = commands.add_parser(
        "check",
        help="check a library file for damage (and repair it with --repair)",
        description="Run SQLite's integrity check, the full-text index's check and "
        "picsearch's own checks; print each problem on one line; exit 1 if any. "
        "--repair first copies the library to LIBRARY.bak-<time>, then rebuilds what "
        "can be rebuilt from what is intact. Stop other programs using the library "
        "(picsearch serve, index) before repairing it.",
    )
    db_option(check)
    check.add_argument("--repair", action="store_true", help="back up the library, then repair it")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(run=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    path = default_db_path() if args.db is None else Path(args.db).expanduser()
    if args.repair:
        return _repair(path, args.json)
    report = check_library(path)
    if args.json:
        print(json.dumps(_check_dict(report), indent=2))
    else:
        _print_problems(report.problems)
    for note in report.notes:
        print(f"picsearch: note: {note}", file=sys.stderr)
    shown = printable(str(path))
    if report.ok:
        print(f"picsearch: {shown}: no problems found", file=sys.stderr)
        return 0
    if NOT_A_LIBRARY in report.kinds():
        print(f"picsearch: {shown} is not a picsearch library", file=sys.stderr)
        return 1
    print(
        f"picsearch: {shown}: {_count(report.problems)}; repair with: "
        f"{printable(repair_command(path))}",
        file=sys.stderr,
    )
    return 1


def _repair(path: Path, as_json: bool) -> int:
    from ..repair import repair_library

    report = repair_library(path)
    shown = printable(str(path))
    if as_json:
        print(json.dumps(_repair_dict(report), indent=2))
    else:
        for line in report.repaired:
            print(f"repaired: {printable(line)}")
        _print_problems(report.remaining)
    if report.backup is None:
        print(f"picsearch: {shown}: no problems found, nothing to repair", file=sys.stderr)
        return 0
    print(
        f"picsearch: backup of the damaged file: {printable(str(report.backup))}", file=sys.stderr
    )
    if report.ok:
        print(f"picsearch: {shown}: repaired; it checks clean now", file=sys.stderr)
        return 0
    print(
        f"picsearch: {shown}: {_count(report.remaining)} left that cannot be repaired "
        "automatically",
        file=sys.stderr,
    )
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


def _repair_dict(report: Any) -> dict[str, Any]:
    return {
        "path": str(report.path),
        "backup": None if report.backup is None else str(report.backup),
        "repaired": report.repaired,
        "remaining": [asdict(p) for p in report.remaining],
        "ok": report.ok,
    }
