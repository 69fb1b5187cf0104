"""Near-duplicate photos: find them, report them, move the extra copies and undo a move.

    from picsearch.dups import find_duplicates, move_duplicates, write_html_report
    groups = find_duplicates(library)
    write_html_report(groups, "duplicates.html")
    move_duplicates(groups, "~/duplicates", dry_run=False)

``find`` ties the steps together: LSH candidates (``lsh``), exact confirmation
(``pairs``), the pixels' check (``content``), guarded groups and the keeper
(``groups``); copies turned on their side (``turned``) on request. ``move`` and
``undo`` move files through ``transfer`` and record them in ``move_log``;
``report`` writes the HTML page.
"""

from __future__ import annotations

from .content import MIN_CONTENT_SHARE, content_share
from .find import find_duplicates
from .groups import GUARD_MARGIN, Group, Member, group_rows, keeper_key
from .lsh import LshOptions, candidate_blocks, candidate_pairs
from .move import MoveReport, move_duplicates, plan_moves
from .move_log import Move
from .pairs import DEFAULT_THRESHOLD, similar_pairs
from .report import human_size, render_html_report, write_html_report
from .undo import UndoReport, undo_move

__all__ = [
    "DEFAULT_THRESHOLD",
    "GUARD_MARGIN",
    "MIN_CONTENT_SHARE",
    "content_share",
    "Member",
    "Group",
    "find_duplicates",
    "similar_pairs",
    "group_rows",
    "keeper_key",
    "LshOptions",
    "candidate_blocks",
    "candidate_pairs",
    "Move",
    "MoveReport",
    "UndoReport",
    "plan_moves",
    "move_duplicates",
    "undo_move",
    "write_html_report",
    "render_html_report",
    "human_size",
]
