"""Near-duplicate photos: LSH candidates, exact cosine confirmation, guarded groups, a keeper.

1. Candidates: pairs of photos that share a bucket in any random-projection LSH
   table (``picsearch.lsh``); a small library is compared all against all.
2. Confirmation: the exact cosine similarity of each candidate pair, kept when
   at least ``threshold``; then the pixels: two files are duplicates only if
   both carry content or their bytes are the same. Blank and nearly blank
   pictures (a white page, a transparent image flattened to one colour) get the
   same vector whatever little they show, so for them the vectors prove nothing.
3. Groups: confirmed pairs are merged with union-find. A chain of merely
   similar photos (A like B like C ... like Z) must not become one giant group,
   so every member of a group must also be at least ``threshold - GUARD_MARGIN``
   similar to the group's centre (its best-connected member); a component that
   fails is split into such stars, best-connected centres first.
4. Keeper: the largest resolution, then the largest file, then the oldest.

Vectors: the image-only ``visual`` space when the model has one (the default
model's CNN features, made for image-to-image similarity), else ``joint``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import InvalidInput
from .images import DEFAULT_MAX_PIXELS, Unusable, decode, read_file
from .lsh import LshOptions, candidate_blocks

if TYPE_CHECKING:
    from .library import Library

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
]

log = logging.getLogger(__name__)

#: Cosine similarity (visual space of the default model) at which two photos are
#: near-duplicates; chosen by the F1 sweep of benchmarks/dups.py (docs/dups.md).
DEFAULT_THRESHOLD = 0.78
#: A member may be this much less similar to its group's centre than the threshold.
GUARD_MARGIN = 0.1
#: Below this many photos every pair is compared exactly (it is fast); above, LSH.
EXACT_BELOW = 4096
#: Confirmed pairs kept per photo (its most similar): bounds memory in crowded collections.
MAX_NEIGHBOURS = 32
#: Groups up to this size list every pair; larger ones list each member against the keeper.
ALL_PAIRS_UP_TO = 16
#: A photo carries content when at least this share of its thumbnail differs from its
#: background; the real photos of benchmarks/dups.py and all their copies have 0.10 or
#: more, a white page with a signature 0.007 (docs/dups.md, "Blank pictures").
MIN_CONTENT_SHARE = 0.02
#: The thumbnail the share is measured on: CONTENT_SIDE pixels square.
CONTENT_SIDE = 64
#: A thumbnail pixel differs from the background (the median colour) by more than this
#: in some channel (of 255): above JPEG and scanner noise on a blank page.
CONTENT_LEVEL = 8
_BLOCK = 2048
#: Vectors stacked at a time to confirm candidate blocks (bounds a temporary).
_GATHER_ROWS = 8192
_PENDING = 1 << 20


@dataclass(frozen=True)
class Member:
    """One photo of a group, with what the keeper rule looks at."""

    id: int
    path: str
    width: int
    height: int
    size: int
    mtime: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": os.fsencode(self.path).decode("utf-8", "backslashreplace"),
            "width": self.width,
            "height": self.height,
            "size": self.size,
            "mtime": self.mtime,
        }


@dataclass(frozen=True)
class Group:
    """Near-duplicates: members (keeper first), the keeper's id, (id_a, id_b, cosine) pairs,
    and the library file the ids belong to (None: not known)."""

    members: list[Member]
    keeper: int
    pairs: list[tuple[int, int, float]]
    library: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "keeper": self.keeper,
            "members": [m.to_dict() | {"keeper": m.id == self.keeper} for m in self.members],
            "pairs": [{"a": a, "b": b, "cosine": round(s, 6)} for a, b, s in self.pairs],
        }


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
    embeds every photo three more times (``picsearch.dups_turned``).
    The photos of the pairs the vectors confirm are read again (a small thumbnail
    each): a blank or nearly blank one is grouped only with exact copies of it.
    """
    _check_threshold(threshold)
    space, ids, vectors = _library_vectors(library, space)
    if turned:
        from .dups_turned import turned_views

        vectors = turned_views(library, ids, vectors, space)
        pairs, sims = _pairs_of_views(vectors, threshold=threshold, lsh=lsh)
    else:
        pairs, sims = similar_pairs(vectors, threshold=threshold, lsh=lsh)
    pairs, sims = _backed_by_pixels(library, ids, pairs, sims)
    library_file = os.path.abspath(library.path)
    groups, gone = [], 0
    for rows in group_rows(vectors, pairs, sims, guard=threshold - GUARD_MARGIN):
        # A photo moved or deleted since it was indexed cannot be kept or moved: leave it out.
        members = [_member(library, int(ids[r])) for r in rows]
        here = [i for i, m in enumerate(members) if os.path.lexists(m.path)]
        gone += len(rows) - len(here)
        if len(here) > 1:
            chosen = [members[i] for i in here]
            groups.append(_group(chosen, _as_views(vectors)[rows[here]], library_file))
    if gone:
        log.info(
            "%d photos of the library are no longer on disk and were left out; "
            "'picsearch index' updates the library",
            gone,
        )
    groups.sort(key=lambda g: (-len(g.members), g.keeper))
    return groups


def similar_pairs(
    vectors: np.ndarray, *, threshold: float, lsh: LshOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (i < j, sorted) whose cosine is at least ``threshold``, and those cosines.

    ``vectors`` are L2-normalised rows. Exact for fewer than EXACT_BELOW rows
    unless ``lsh`` is given; otherwise the pairs LSH proposes, confirmed exactly.
    """
    _check_threshold(threshold)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if lsh is None and len(vectors) < EXACT_BELOW:
        return _exact_pairs(vectors, threshold)
    n = len(vectors)
    keys, sims = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    found_keys, found_sims, pending = [], [], 0
    all_blocks = candidate_blocks(vectors, lsh or LshOptions())
    with _one_blas_thread():
        for blocks in all_blocks:
            for block_keys, block_sims in _confirm_blocks(vectors, blocks, threshold):
                found_keys.append(block_keys)
                found_sims.append(block_sims)
                pending += len(block_keys)
            if pending > _PENDING:  # the same pair comes from many tables: fold repeats
                keys, sims = _unique(n, keys, sims, found_keys, found_sims)
                found_keys, found_sims, pending = [], [], 0
    keys, sims = _unique(n, keys, sims, found_keys, found_sims)
    return np.stack([keys // n, keys % n], axis=1), sims


def group_rows(
    vectors: np.ndarray, pairs: np.ndarray, sims: np.ndarray, *, guard: float
) -> list[np.ndarray]:
    """Row groups (two or more rows each) from confirmed pairs: union-find, chain guard.

    ``vectors`` is (n, dim), or (n, views, dim) with each photo's upright vector
    first and its turned views after it (a member may match its centre turned).
    """
    vectors = _as_views(vectors)
    labels = _components(len(vectors), pairs)
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    components = [c for c in np.split(order, cuts) if len(c) > 1]
    if not components:
        return []
    edge_order = np.argsort(labels[pairs[:, 0]], kind="stable")
    edge_labels = labels[pairs[edge_order, 0]]
    groups = []
    for rows in components:
        lo = np.searchsorted(edge_labels, labels[rows[0]], "left")
        hi = np.searchsorted(edge_labels, labels[rows[0]], "right")
        chosen = edge_order[lo:hi]
        groups += _guarded(vectors, rows, pairs[chosen], sims[chosen], guard)
    return groups


# --------------------------------------------------------------------------- pairs


def _exact_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    found_a, found_b, found_s = [], [], []
    for start in range(0, len(vectors), _BLOCK):
        block = vectors[start : start + _BLOCK] @ vectors[start:].T
        a, b = np.nonzero(np.triu(block >= threshold, k=1))
        found_a.append(a + start)
        found_b.append(b + start)
        found_s.append(block[a, b])
    if not found_a:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    pairs = np.stack([np.concatenate(found_a), np.concatenate(found_b)], axis=1).astype(np.int64)
    return pairs, np.concatenate(found_s).astype(np.float32)


def _confirm_blocks(
    vectors: np.ndarray, blocks: np.ndarray, threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pair keys (i * n + j, i < j) and cosines of the pairs within blocks above threshold."""
    n, size = len(vectors), blocks.shape[1]
    upper_i, upper_j = np.triu_indices(size, k=1)
    step = max(1, _GATHER_ROWS // size)
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        # One small product per block: numpy's stacked matmul is slower here.
        gram = np.stack([m @ m.T for m in vectors[chunk]])[:, upper_i, upper_j]
        which, pair = np.nonzero(gram >= threshold)
        if len(which):
            a, b = chunk[which, upper_i[pair]], chunk[which, upper_j[pair]]
            yield np.minimum(a, b) * n + np.maximum(a, b), gram[which, pair]


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Tiny matrix products run many times faster on one BLAS thread than on several."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _unique(
    n: int,
    keys: np.ndarray,
    sims: np.ndarray,
    more_keys: list[np.ndarray],
    more_sims: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs, each kept only if among the MAX_NEIGHBOURS best of one of its rows."""
    keys, first = np.unique(np.concatenate([keys, *more_keys]), return_index=True)
    sims = np.concatenate([sims, *more_sims])[first]
    keep = _top_per_row(keys // n, sims) | _top_per_row(keys % n, sims)
    return keys[keep], sims[keep]


def _top_per_row(rows: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """Whether each pair is among the MAX_NEIGHBOURS most similar pairs of its row."""
    order = np.lexsort((-sims, rows))
    sorted_rows = rows[order]
    run_start = np.searchsorted(sorted_rows, sorted_rows, "left")
    keep = np.empty(len(rows), dtype=bool)
    keep[order] = np.arange(len(rows)) - run_start < MAX_NEIGHBOURS
    return keep


# --------------------------------------------------------------------------- groups


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over all edges at once: hook roots onto smaller roots, then compress."""
    parent = np.arange(n, dtype=np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            return parent
        high = np.maximum(root_a[differ], root_b[differ])
        low = np.minimum(root_a[differ], root_b[differ])
        parent[high] = low  # where several writes race, one wins: still progress
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def _guarded(
    vectors: np.ndarray, rows: np.ndarray, pairs: np.ndarray, sims: np.ndarray, guard: float
) -> list[np.ndarray]:
    """One component as groups whose members are all at least ``guard`` to their centre."""
    a, b = np.searchsorted(rows, pairs[:, 0]), np.searchsorted(rows, pairs[:, 1])
    strength = np.bincount(a, sims, len(rows)) + np.bincount(b, sims, len(rows))
    centre = int(np.argmax(strength))
    if len(rows) == 2 or _to_centre(vectors, rows, rows[centre]).min() >= guard:
        return [rows]
    return _stars(vectors, rows, a, b, strength, guard)


def _stars(
    vectors: np.ndarray,
    rows: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    strength: np.ndarray,
    guard: float,
) -> list[np.ndarray]:
    """Split a chained component: each centre, best-connected first, takes the unassigned
    members it reaches through confirmed pairs that are at least ``guard`` similar to it."""
    source, target = np.concatenate([a, b]), np.concatenate([b, a])
    target = target[np.argsort(source, kind="stable")]
    bounds = np.searchsorted(np.sort(source), np.arange(len(rows) + 1))
    assigned = np.zeros(len(rows), dtype=bool)
    groups = []
    for centre in np.argsort(-strength, kind="stable").tolist():
        if assigned[centre]:
            continue
        assigned[centre] = True
        members = frontier = np.array([centre])
        while len(frontier):
            reach = np.concatenate([target[bounds[x] : bounds[x + 1]] for x in frontier])
            reach = np.unique(reach[~assigned[reach]])
            frontier = reach[_to_centre(vectors, rows[reach], rows[centre]) >= guard]
            assigned[frontier] = True
            members = np.concatenate([members, frontier])
        if len(members) > 1:
            groups.append(rows[np.sort(members)])
    return groups


def _as_views(vectors: np.ndarray) -> np.ndarray:
    return vectors[:, None, :] if vectors.ndim == 2 else vectors


def _to_centre(views: np.ndarray, rows: np.ndarray, centre: int) -> np.ndarray:
    """Each row's best similarity to the centre's upright vector over its views."""
    return (views[rows] @ views[centre, 0]).max(axis=1)


def _pairs_of_views(
    views: np.ndarray, *, threshold: float, lsh: LshOptions | None
) -> tuple[np.ndarray, np.ndarray]:
    """Photo pairs that match in any views: every view is a row, rows map back to photos."""
    n, count, dim = views.shape
    rows = np.ascontiguousarray(views.transpose(1, 0, 2).reshape(n * count, dim))
    pairs, sims = similar_pairs(rows, threshold=threshold, lsh=lsh)
    a, b = pairs[:, 0] % n, pairs[:, 1] % n
    keep = a != b
    low, high, sims = np.minimum(a, b)[keep], np.maximum(a, b)[keep], sims[keep]
    keys = low * n + high
    order = np.lexsort((-sims, keys))  # per pair, the best view first
    keys, sims = keys[order], sims[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    keys, sims = keys[first], sims[first]
    return np.stack([keys // n, keys % n], axis=1), sims


# --------------------------------------------------------------------------- pixels


@dataclass(frozen=True)
class _Look:
    """What a file holds now: its content hash and the share of it that shows something."""

    digest: str
    share: float


def content_share(path: str | os.PathLike[str]) -> float:
    """The share of a photo that differs from its background, as the encoders see it
    (transparency flattened): 0.0 for a blank picture; see MIN_CONTENT_SHARE."""
    look = _look(os.fspath(path))
    if look is None:
        raise InvalidInput(f"cannot read {os.fspath(path)} as an image: check the file")
    return look.share


def _backed_by_pixels(
    library: Library, ids: np.ndarray, pairs: np.ndarray, sims: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose files agree with their vectors: both carry content, or the same bytes.

    Only the photos of confirmed pairs are read again (a small thumbnail each).
    """
    if not len(pairs):
        return pairs, sims
    rows = np.unique(pairs)
    paths = [library.get(int(ids[row])).path for row in rows]
    looks = dict(zip(rows.tolist(), _looks(paths), strict=True))
    keep = np.array([_same_content(looks[a], looks[b]) for a, b in pairs.tolist()], dtype=bool)
    unread = sum(look is None for look in looks.values())
    blank = sum(look is not None and look.share < MIN_CONTENT_SHARE for look in looks.values())
    if unread:
        log.info(
            "%d photos could not be read again (moved, deleted or changed since indexing) and "
            "were left out; 'picsearch index' updates the library",
            unread,
        )
    if blank:
        log.info("%d blank or nearly blank photos are grouped only with exact copies", blank)
    return pairs[keep], sims[keep]


def _same_content(a: _Look | None, b: _Look | None) -> bool:
    if a is None or b is None:  # what cannot be read cannot be confirmed, nor moved
        return False
    if a.digest == b.digest:
        return True
    return min(a.share, b.share) >= MIN_CONTENT_SHARE


def _looks(paths: Sequence[str]) -> list[_Look | None]:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(_look, paths))


def _look(path: str) -> _Look | None:
    try:
        file = read_file(path)
        # decode() flattens transparency as indexing did: the picture the vectors came from.
        image, _, _ = decode(file.data, short_side=CONTENT_SIDE, max_pixels=DEFAULT_MAX_PIXELS)
    except Unusable:
        return None
    return _Look(file.digest, _share_shown(image))


def _share_shown(image: Image.Image) -> float:
    """The share of the thumbnail's pixels that differ from its median colour."""
    square = image.resize((CONTENT_SIDE, CONTENT_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(square, dtype=np.float32)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    return float((np.abs(pixels - background).max(axis=2) > CONTENT_LEVEL).mean())


# --------------------------------------------------------------------------- members


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


def keeper_key(member: Member) -> tuple[int, int, float, int]:
    """Sort key of the keeper rule: largest resolution, then largest file, then oldest."""
    return (-member.width * member.height, -member.size, member.mtime, member.id)


def _group(members: list[Member], vectors: np.ndarray, library: str | None = None) -> Group:
    order = sorted(range(len(members)), key=lambda i: keeper_key(members[i]))
    members = [members[i] for i in order]
    views = vectors[order]
    # The best match over the views, either way round: a turned copy scores as found.
    sims = np.einsum("ivd,jd->ijv", views, views[:, 0]).max(axis=2)
    sims = np.maximum(sims, sims.T)
    if len(members) <= ALL_PAIRS_UP_TO:
        index_pairs = [(i, j) for i in range(len(members)) for j in range(i + 1, len(members))]
    else:
        index_pairs = [(0, j) for j in range(1, len(members))]
    pairs = [(members[i].id, members[j].id, float(sims[i, j])) for i, j in index_pairs]
    return Group(members=members, keeper=members[0].id, pairs=pairs, library=library)


# --------------------------------------------------------------------------- inputs


def _check_threshold(threshold: float) -> None:
    if not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise InvalidInput(
            f"threshold must be a cosine similarity in (0, 1], not {threshold!r} "
            f"(default {DEFAULT_THRESHOLD})"
        )


def _library_vectors(library: Library, space: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """The space used, the ids and their vectors."""
    if space is not None:
        return (space, *library.vectors(space))
    try:
        return ("visual", *library.vectors("visual"))
    except InvalidInput:
        return ("joint", *library.vectors("joint"))
