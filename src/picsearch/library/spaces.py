"""The vector spaces of a library's model ("joint", and "visual" for some), each with
its index beside the library file, made on first use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import ann
from ..catalog import Catalog
from ..encoders import Encoder
from ..vector_index import SpaceIndex

__all__ = ["Spaces"]


class Spaces:
    """The spaces of the model ``encoder()`` loads (on first need), and their indexes
    in ``folder``."""

    def __init__(
        self, folder: Path, options: ann.IndexOptions, encoder: Callable[[], Encoder]
    ) -> None:
        self.folder, self.options = folder, options
        self._load_encoder = encoder
        self._indexes: dict[str, SpaceIndex] = {}

    @property
    def encoder(self) -> Encoder:
        return self._load_encoder()

    def names(self) -> list[str]:
        """["joint"], or ["joint", "visual"] for a model with an image-only space."""
        return ["joint", "visual"] if self.encoder.visual_dim else ["joint"]

    def index(self, name: str) -> SpaceIndex:
        if name not in self._indexes:
            dim = self.encoder.dim if name == "joint" else self.encoder.visual_dim
            self._indexes[name] = SpaceIndex(self.folder, name, int(dim or 0), self.options)
        return self._indexes[name]

    def live(self, name: str, catalog: Catalog) -> ann.LiveIndex:
        """The index of one space, brought up to date with the catalog."""
        return self.index(name).sync(catalog)

    def maintain(self, catalog: Catalog) -> None:
        """After indexing: each index brought up to date and saved (rebuilt if it drifted).

        Saved atomically: stopped midway, the previous index stays in use, and the
        next search brings it up to date from the catalog.
        """
        for name in self.names():
            self.index(name).maintain(catalog)

    def summaries(self, catalog: Catalog) -> dict[str, dict[str, Any]]:
        """Each space's index: backend, size, bytes per vector, recall, why chosen."""
        summaries = {}
        for name in self.names():
            info = self.live(name, catalog).info()
            auto = info.get("auto") or {}
            summaries[name] = {
                "backend": info["backend"],
                "size": info["size"],
                "bytes_per_vector": info["bytes_per_vector"],
                "recall@10": _recall(info),
                "chosen_by": auto.get("reason", "options"),
            }
        return summaries

    def size_on_disk(self) -> int:
        folder = self.folder
        return (
            sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            if folder.exists()
            else 0
        )


def _recall(info: dict[str, Any]) -> float | None:
    if info["backend"] == "exact":
        return 1.0
    return (info.get("recall") or {}).get("recall")
