"""The folders of a library's photos as a tree, with how many photos each holds (its
subfolders' included). Its top is the indexed roots: from the file system's root down,
a folder with one subfolder and no photo of its own is passed through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FolderTree", "folder_tree"]


@dataclass(frozen=True)
class FolderTree:
    """Photo counts by folder (paths as bytes, without a trailing slash)."""

    counts: dict[bytes, int]
    children: dict[bytes, list[bytes]]
    total: int

    def count(self, folder: bytes) -> int:
        """Photos under ``folder`` (0 when it holds none)."""
        return self.counts.get(_normal(folder), 0)

    def subfolders(self, folder: bytes) -> list[bytes]:
        """The folders just under ``folder`` that hold photos, by name."""
        return self.children.get(_normal(folder), [])

    def roots(self) -> list[bytes]:
        """The top folders: where the indexed trees start."""
        level = [b"/"] if self.counts else []
        roots: list[bytes] = []
        for folder in level:
            while self._passes_through(folder):
                folder = self.children[folder][0]
            roots.append(folder)
        return roots

    def _passes_through(self, folder: bytes) -> bool:
        below = self.children.get(folder, [])
        return len(below) == 1 and self.counts[below[0]] == self.counts[folder]


def folder_tree(paths: Iterable[bytes]) -> FolderTree:
    """The tree of the folders of these file paths."""
    direct = Counter(path.rpartition(b"/")[0] or b"/" for path in paths)
    counts: Counter[bytes] = Counter()
    children: dict[bytes, set[bytes]] = {}
    for folder, photos in direct.items():
        for ancestor, parent in _lineage(folder):
            counts[ancestor] += photos
            if parent is not None:
                children.setdefault(parent, set()).add(ancestor)
    return FolderTree(
        dict(counts),
        {parent: sorted(below) for parent, below in children.items()},
        sum(direct.values()),
    )


def _lineage(folder: bytes) -> list[tuple[bytes, bytes | None]]:
    """(folder, its parent) from ``folder`` up to the root (whose parent is None)."""
    chain: list[tuple[bytes, bytes | None]] = []
    while True:
        parent = folder.rpartition(b"/")[0] or b"/"
        if folder == b"/":
            chain.append((folder, None))
            return chain
        chain.append((folder, parent))
        folder = parent


def _normal(folder: bytes) -> bytes:
    return folder.rstrip(b"/") or b"/"
