"""The near-duplicate routes: the groups (each member with its size, resolution, date and
similarity to the others), and moving a group's copies into a folder and back, through
``picsearch.dups`` (the same move log, checks and library journal as ``dups --move-to``).

Writes come from this page only: a request another site's page sends (its Origin is
not this server) is refused, and with a token every request needs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import replace
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request

from ..display import path_text
from ..errors import InvalidInput
from ..library import Library
from . import models
from .browse import BrowserPerThread
from .browse_models import (
    DupGroup,
    DuplicatesResponse,
    DupMember,
    DupPair,
    MovedModel,
    MoveLogsResponse,
    MoveRequest,
    MoveResponse,
    UndoRequest,
    UndoResponse,
)
from .errors import ApiError
from .pool import LibraryPool
from .security import host_name

__all__ = ["add_duplicate_routes", "dups_module"]

_ERRORS = models.ERROR_RESPONSES
_WRITE_ERRORS = _ERRORS | {403: {"model": models.ErrorBody}, 409: {"model": models.ErrorBody}}
#: Groups up to this size carry every member's similarity to every other.
_MATRIX_UP_TO = 64


def dups_module() -> Any | None:
    """``picsearch.dups``, or None where this installation lacks it."""
    if importlib.util.find_spec("picsearch.dups") is None:
        return None
    try:
        return importlib.import_module("picsearch.dups")
    except ImportError:
        return None


def _needed() -> Any:
    dups = dups_module()
    if dups is None:
        raise ApiError(404, "near-duplicate detection is not available in this installation")
    return dups


def add_duplicate_routes(app: FastAPI, pool: LibraryPool, browsers: BrowserPerThread) -> None:
    @app.get("/api/duplicates", response_model=DuplicatesResponse, responses=_ERRORS)
    async def duplicates(
        threshold: float | None = Query(None, gt=0, le=1, description="cosine to count as same"),
    ) -> DuplicatesResponse:
        """Groups of near-duplicate photos, largest first (404 where not available)."""
        dups = _needed()
        chosen = dups.DEFAULT_THRESHOLD if threshold is None else threshold

        def job(lib: Library) -> list[DupGroup]:
            return [_group(lib, g) for g in dups.find_duplicates(lib, threshold=chosen)]

        return DuplicatesResponse(threshold=chosen, groups=await pool.run(job))

    _add_move_routes(app, pool, browsers)


def _add_move_routes(app: FastAPI, pool: LibraryPool, browsers: BrowserPerThread) -> None:
    @app.post("/api/duplicates/move", response_model=MoveResponse, responses=_WRITE_ERRORS)
    async def move(request: Request, body: MoveRequest) -> MoveResponse:
        """Move a group's copies into a folder (``confirm``: false only plans it). The
        library follows the files; the answer names the move log that undoes it."""
        _same_origin(request)
        dups = _needed()
        target = _target(body.folder, await browsers.run(lambda b: b.folders().roots()))

        def job(lib: Library) -> tuple[Any, list[str]]:
            group, left_out = _chosen_group(dups, lib, body)
            if body.confirm and left_out:  # a move does only what was asked, or nothing
                raise ApiError(404 if group is None else 409, f"{left_out[0]}: reload")
            if group is None:
                return dups.MoveReport([], dry_run=True), left_out
            try:
                report = dups.move_duplicates(
                    [group], target, dry_run=not body.confirm, library=lib.path
                )
            except InvalidInput as exc:
                raise ApiError(400, str(exc)) from None
            return report, left_out

        report, left_out = await pool.run(job)
        return MoveResponse(
            moved=not report.dry_run,
            moves=[
                MovedModel(
                    id=m.id,
                    source=path_text(m.source),
                    destination=path_text(m.destination),
                    size=m.size,
                )
                for m in report.moves
            ],
            skipped=[f"{path_text(s)}: {reason}" for s, reason in report.skipped] + left_out,
            log=None if report.log_path is None else path_text(report.log_path),
        )

    @app.get("/api/duplicates/moves", response_model=MoveLogsResponse, responses=_ERRORS)
    async def moves() -> MoveLogsResponse:
        """The move logs of this library's moves, newest first."""
        return MoveLogsResponse(logs=[path_text(p) for p in await _logs(browsers)])

    @app.post("/api/duplicates/undo", response_model=UndoResponse, responses=_WRITE_ERRORS)
    async def undo(request: Request, body: UndoRequest) -> UndoResponse:
        """Move back the files of one of this library's moves (a file that changed since,
        or whose old place is taken, stays, with why)."""
        _same_origin(request)
        dups = _needed()
        if body.log not in await _logs(browsers):
            raise ApiError(404, "no such move of this library: /api/duplicates/moves lists them")
        report = await pool.run(lambda lib: dups.undo_move(body.log, library=lib.path))
        return UndoResponse(
            restored=len(report.restored),
            already=len(report.already),
            refused=[f"{path_text(m.source)}: {why}" for m, why in report.refused],
        )


async def _logs(browsers: BrowserPerThread) -> list[str]:
    return await browsers.run(lambda b: b.move_logs())


def _same_origin(request: Request) -> None:
    """Refuse a write sent by another site's page (browsers name it in Origin)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    _, _, rest = origin.partition("://")
    if rest != request.headers.get("host", "") or host_name(rest) is None:
        raise ApiError(403, "writes are accepted only from this server's own page")


def _target(folder: str, roots: list[bytes]) -> str:
    """The folder to move into: absolute, and outside the library's folders (there the
    moved copies would be indexed again and found as duplicates again)."""
    if not os.path.isabs(folder) or "\x00" in folder:
        raise ApiError(400, f"the folder to move into must be an absolute path, not {folder!r}")
    real = os.path.realpath(folder)
    for root in roots:
        top = os.path.realpath(os.fsdecode(root))
        if real == top or real.startswith(top.rstrip("/") + "/"):
            raise ApiError(
                409,
                f"{folder} is inside the library's folder {path_text(top)}: the moved copies "
                "would be found again; choose a folder outside it",
            )
    return real


def _chosen_group(dups: Any, lib: Library, body: MoveRequest) -> tuple[Any | None, list[str]]:
    """The group of ``body.keeper`` as found now, with that keeper and those of the asked
    copies that are in it (a photo that is not a near-duplicate of the keeper is never
    moved), and why each other asked photo is left out. None: the keeper is in no group."""
    chosen = dups.DEFAULT_THRESHOLD if body.threshold is None else body.threshold
    for group in dups.find_duplicates(lib, threshold=chosen):
        copies = {m.id for m in group.members} - {body.keeper}
        if len(copies) == len(group.members):  # the keeper is not in this one
            continue
        left_out = [
            f"photo {i} is not a copy to move in the group of {body.keeper}"
            for i in sorted(set(body.move) - copies)
        ]
        kept = [m for m in group.members if m.id == body.keeper or m.id in copies & set(body.move)]
        return replace(group, members=kept, keeper=body.keeper), left_out
    return None, [f"photo {body.keeper} is in no group of near-duplicates now"]


def _group(lib: Library, group: Any) -> DupGroup:
    ids = [m.id for m in group.members]
    rows = lib.rows(ids)
    members = [
        DupMember(
            **models.file_fields(m),
            mtime=m.mtime,
            taken=rows[m.id].photo.get("taken") if m.id in rows else None,
        )
        for m in group.members
    ]
    pairs = [DupPair(a=a, b=b, score=round(float(s), 6)) for a, b, s in group.pairs]
    return DupGroup(
        keeper=group.keeper, members=members, pairs=pairs, similarity=_similarity(lib, ids)
    )


def _similarity(lib: Library, ids: list[int]) -> list[list[float]] | None:
    """Each member's cosine to each other, in member order (None for a large group)."""
    if len(ids) > _MATRIX_UP_TO:
        return None
    space = "visual" if lib.encoder.visual_dim else "joint"
    found, vectors = lib.vectors(space, ids=ids)
    order = [int(np.searchsorted(found, i)) for i in ids]
    if len(found) != len(ids):
        return None
    chosen = vectors[order]
    return np.round(chosen @ chosen.T, 4).tolist()
