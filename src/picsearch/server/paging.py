"""A ranked result list a page at a time (``?start=N&k=M``).

A search gives its best ``n``; a page is the ``start``-th to ``start + k``-th of them.
Photos of equal score (exact copies have equal vectors) may come in any order, and at
the cut a search keeps any of them: so the list is asked for until its last score
differs from the page's last (or it ends), then put in one order, (score, id), before
the page is cut from it. Each page is then a part of one and the same list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..library import Hit

__all__ = ["ranked_page"]


def ranked_page(
    search: Callable[[int], list[Hit]], *, start: int, k: int, in_order: bool = False
) -> list[Hit]:
    """Hits ``start`` to ``start + k`` of the list ``search(n)`` begins, ranks from
    ``start + 1``; the list ``search`` returned, cut to them (its attributes kept).
    ``in_order``: the search's own order is one order already (filters alone list the
    photos newest first, all scoring 1), so it is kept; so it is when every score is
    the same (words that said only when and where)."""
    wanted = start + k
    if in_order:
        found = search(wanted)
        found[:] = found[start:wanted]
        return found
    asked = wanted + 1
    found = search(asked)
    while _tied_past_the_cut(found, asked, wanted):
        asked *= 2  # ask for the rest of the tie
        found = search(asked)
    if found and found[0].score == found[-1].score:  # by the filters alone, after all
        found[:] = found[start:wanted]
        return found
    ordered = sorted(found, key=lambda hit: (-hit.score, hit.id))[start:wanted]
    found[:] = [replace(hit, rank=start + n) for n, hit in enumerate(ordered, 1)]
    return found


def _tied_past_the_cut(found: list[Hit], asked: int, wanted: int) -> bool:
    """Whether photos of the page's last score may go on past what was asked for (not
    when every score is the same: a list in its own order, such as filters alone)."""
    if len(found) < asked:
        return False
    return found[-1].score == found[wanted - 1].score != found[0].score
