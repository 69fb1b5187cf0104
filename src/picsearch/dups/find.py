"""Near-duplicate photos of a library: LSH candidates, exact cosine confirmation,
the pixels' check, guarded groups, a keeper.

1. Candidates: pairs of photos that share a bucket in any random-projection LSH
   table (``picsearch.dups.lsh``); a small library is compared all against all.
2. Confirmation: the exact cosine similarity of each candidate pair, kept when
   at least ``threshold`` (``picsearch.dups.pairs``); then the pixels: two files
   are duplicates only if both carry content or their bytes are the same
   (``picsearch.dups.content``).
3. Groups: confirmed pairs merged with union-find, chains split into stars
   around their best-connected photos (``picsearch.dups.groups``).
4. Keeper: the largest resolution, then the largest file, then the oldest.

Vectors: the image-only ``visual`` space when the model has one (the default
model's CNN features, made for image-to-image similarity), else ``joint``.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInput
from .content import backed_by_pixels
from .groups import GUARD_MARGIN, Group, Member, as_views, group_rows, make_group
from .lsh import LshOptions
from .pairs import DEFAULT_THRESHOLD, check_threshold, pairs_of_views, similar_pairs

if TYPE_CHECKING:
    from ..library import Library

__all__ = ["find_duplicates"]

log = logging.getLogger(__name__)


def find_duplicates(
    library: Library,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    space: str | None = None,
    lsh: LshOptions | None = None,
    turned: bool = False,
) -> list[Group]:
    """Groups of near-duplicate photos in a library, largest first, keeper first in each.

    ``space`` is "visual" or "joint" (default: visual when the model has it).
    ``lsh`` forces LSH candidates (with these options) even for a small library.
    ``turned`` also finds copies turned by 90, 180 or 270 degrees: it reads and
    embeds every photo three more times (``picsearch.dups.turned``).
    The photos of the pairs the vectors confirm are read again (a small thumbnail
    each): a blank or nearly blank one is grouped only with exact copies of it.
    """
    check_threshold(threshold)
    space, ids, vectors = _library_vectors(library, space)
    if turned:
        from .turned import turned_views

        vectors = turned_views(library, ids, vectors, space)
        pairs, sims = pairs_of_views(vectors, threshold=threshold, lsh=lsh)
    else:
        pairs, sims = similar_pairs(vectors, threshold=threshold, lsh=lsh)
    pairs, sims = backed_by_pixels(library, ids, pairs, sims)
    library_file = os.path.abspath(library.path)
    groups, gone = [], 0
    for rows in group_rows(vectors, pairs, sims, guard=threshold - GUARD_MARGIN):
        # A photo moved or deleted since it was indexed cannot be kept or moved: leave it out.
        members = [_member(library, int(ids[r])) for r in rows]
        here = [i for i, m in enumerate(members) if os.path.lexists(m.path)]
        gone += len(rows) - len(here)
        if len(here) > 1:
            chosen = [members[i] for i in here]
            groups.append(make_group(chosen, as_views(vectors)[rows[here]], library_file))
    if gone:
        log.info(
            "%d photos of the library are no longer on disk and were left out; "
            "'picsearch index' updates the library",
            gone,
        )
    groups.sort(key=lambda g: (-len(g.members), g.keeper))
    return groups


def _member(library: Library, item_id: int) -> Member:
    item = library.get(item_id)
    meta = item.metadata
    return Member(
        id=item.id,
        path=item.path,
        width=int(meta.get("width", 0)),
        height=int(meta.get("height", 0)),
        size=int(meta.get("size", 0)),
        mtime=float(meta.get("mtime", 0.0)),
    )


def _library_vectors(library: Library, space: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """The space used, the ids and their vectors."""
    if space is not None:
        return (space, *library.vectors(space))
    try:
        return ("visual", *library.vectors("visual"))
    except InvalidInput:
        return ("joint", *library.vectors("joint"))
