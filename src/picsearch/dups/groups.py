"""Groups of near-duplicates from confirmed pairs, and each group's keeper.

Confirmed pairs are merged with union-find. A chain of merely similar photos
(A like B like C ... like Z) must not become one giant group, so every member of
a group must also be at least ``threshold - GUARD_MARGIN`` similar to the
group's centre (its best-connected member); a component that fails is split
into such stars, best-connected centres first. The keeper: the largest
resolution, then the largest file, then the oldest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..display import path_text

__all__ = [
    "GUARD_MARGIN",
    "Member",
    "Group",
    "as_views",
    "group_rows",
    "keeper_key",
    "make_group",
]

#: A member may be this much less similar to its group's centre than the threshold.
GUARD_MARGIN = 0.1
#: Groups up to this size list every pair; larger ones list each member against the keeper.
ALL_PAIRS_UP_TO = 16


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
            "path": path_text(self.path),
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


def group_rows(
    vectors: np.ndarray, pairs: np.ndarray, sims: np.ndarray, *, guard: float
) -> list[np.ndarray]:
    """Row groups (two or more rows each) from confirmed pairs: union-find, chain guard.

    ``vectors`` is (n, dim), or (n, views, dim) with each photo's upright vector
    first and its turned views after it (a member may match its centre turned).
    """
    vectors = as_views(vectors)
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


def as_views(vectors: np.ndarray) -> np.ndarray:
    """(n, dim) vectors as (n, 1, dim): one view each; (n, views, dim) as they are."""
    return vectors[:, None, :] if vectors.ndim == 2 else vectors


def _to_centre(views: np.ndarray, rows: np.ndarray, centre: int) -> np.ndarray:
    """Each row's best similarity to the centre's upright vector over its views."""
    return (views[rows] @ views[centre, 0]).max(axis=1)


# --------------------------------------------------------------------------- members


def keeper_key(member: Member) -> tuple[int, int, float, int]:
    """Sort key of the keeper rule: largest resolution, then largest file, then oldest."""
    return (-member.width * member.height, -member.size, member.mtime, member.id)


def make_group(members: list[Member], views: np.ndarray, library: str | None = None) -> Group:
    """A group of ``members`` with their (members, views, dim) vectors: keeper first, and
    the pairs' cosines (every pair up to ALL_PAIRS_UP_TO members, else each to the keeper)."""
    order = sorted(range(len(members)), key=lambda i: keeper_key(members[i]))
    members = [members[i] for i in order]
    views = views[order]
    # The best match over the views, either way round: a turned copy scores as found.
    sims = np.einsum("ivd,jd->ijv", views, views[:, 0]).max(axis=2)
    sims = np.maximum(sims, sims.T)
    if len(members) <= ALL_PAIRS_UP_TO:
        index_pairs = [(i, j) for i in range(len(members)) for j in range(i + 1, len(members))]
    else:
        index_pairs = [(0, j) for j in range(1, len(members))]
    pairs = [(members[i].id, members[j].id, float(sims[i, j])) for i, j in index_pairs]
    return Group(members=members, keeper=members[0].id, pairs=pairs, library=library)
