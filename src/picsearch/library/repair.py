"""``repair_library``: a damaged library repaired from what is intact, after a backup.

The file's own repair (``picsearch.catalog.repair``: the backup, readable rows copied
past damaged pages, meta values and metadata fixed) needs no model; photos whose
vectors were damaged are then embedded again from their files with the library's
model, and those whose files cannot be read are removed (the backup keeps them).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog.check import check_library
from ..catalog.repair import (
    RepairReport,
    begin_repair,
    drop_vector_index,
    fix_rows_and_meta,
    remove_unembedded,
)
from ..display import path_text
from .core import Library

__all__ = ["RepairReport", "repair_library"]


def repair_library(path: str | os.PathLike[str]) -> RepairReport:
    """Check the library at ``path`` and repair what can be rebuilt from what is intact."""
    path = Path(path).expanduser()
    report = begin_repair(path)
    if report is None:
        return RepairReport(path)
    report.repaired += drop_vector_index(path)
    repaired, stale = fix_rows_and_meta(path)
    report.repaired += repaired
    if stale:
        report.repaired += _embed_again(path, stale)
    report.remaining = check_library(path).problems
    return report


def _embed_again(path: Path, stale: list[tuple[int, str]]) -> list[str]:
    """Index the files of the photos whose vectors were damaged, with the library's
    model; a photo that still has no vector afterwards is removed."""
    with Library(path) as library:
        library.index([file for _, file in stale])
    left = remove_unembedded(path, stale)
    lines = [
        f"embedded photo {i} ({path_text(f)}) again from its file"
        for i, f in stale
        if (i, f) not in left
    ]
    lines += [
        f"removed photo {i} ({path_text(f)}): its vector was damaged and its file could not be "
        "read again (the backup keeps its row)"
        for i, f in left
    ]
    return lines
