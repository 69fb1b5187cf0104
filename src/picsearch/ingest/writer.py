"""Embedding prepared photos in batches, and committing each batch in one transaction."""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..concepts import ConceptBank
from ..concepts.bank import blend_weight_for
from ..encoders import Encoder
from ..photo_info import PhotoInfo
from .read import Prepared, Same
from .summary import IndexSummary
from .walk import Found

__all__ = ["Writer"]


class Writer:
    """Embeds prepared images in batches and commits each batch in one transaction."""

    def __init__(
        self,
        catalog: Catalog,
        encoder: Encoder,
        known: dict[bytes, tuple[int, int, int, str]],
        summary: IndexSummary,
        batch_size: int,
        concepts: ConceptBank | None = None,
    ) -> None:
        self.catalog, self.encoder, self.known = catalog, encoder, known
        self.summary, self.batch_size = summary, batch_size
        self.concepts, self.blend_weight = concepts, blend_weight_for(encoder)
        self.batch: list[Prepared] = []

    def take(self, result: Prepared | Same) -> None:
        if isinstance(result, Same):
            self._same(result)
            return
        self.batch.append(result)
        if len(self.batch) >= self.batch_size:
            self.flush()

    def _same(self, same: Same) -> None:
        found = same.found
        previous = self.known.get(found.path_bytes)
        if previous and previous[0] == same.item_id:
            # Same file, same bytes, new timestamp: nothing to embed.
            with self.catalog.transaction():
                self.catalog.touch(same.item_id, size=found.size, mtime_ns=found.mtime_ns)
                self._store_photo(same.item_id, same.photo)
            self.summary.unchanged += 1
            return
        with self.catalog.transaction():
            self.catalog.copy_from(
                same.item_id,
                path_bytes=found.path_bytes,
                size=found.size,
                mtime_ns=found.mtime_ns,
            )
            target = self.catalog.concepts.item_id(found.path_bytes)
            if target is not None:
                self._store_photo(target, same.photo)
        self.summary.reused += 1
        self._count(found)

    def flush(self) -> None:
        if not self.batch:
            return
        embeddings = self.encoder.embed_arrays(np.stack([p.array for p in self.batch]))
        joint = embeddings.joint
        if self.concepts is not None:
            seen = [p.concepts for p in self.batch]
            joint = self.concepts.blend(joint, seen, self.encoder.embed_texts, self.blend_weight)
        self._commit(joint, embeddings.visual)
        for prepared in self.batch:
            self._count(prepared.found)
        self.batch = []

    def _commit(self, joint: np.ndarray, visual: np.ndarray | None) -> None:
        """The batch's rows and concepts, in one transaction."""
        with self.catalog.transaction():
            for i, prepared in enumerate(self.batch):
                found = prepared.found
                self.catalog.upsert(
                    path_bytes=found.path_bytes,
                    size=found.size,
                    mtime_ns=found.mtime_ns,
                    digest=prepared.digest,
                    width=prepared.width,
                    height=prepared.height,
                    joint=joint[i],
                    visual=None if visual is None else visual[i],
                )
                item_id = self.catalog.concepts.item_id(found.path_bytes)
                if item_id is not None:
                    self.catalog.concepts.replace(item_id, prepared.concepts)
                    self._store_photo(item_id, prepared.photo)

    def _store_photo(self, item_id: int, photo: PhotoInfo | None) -> None:
        """When and where the photo was taken; the broken fields left out are counted."""
        if photo is not None:
            self.catalog.photos.replace(item_id, photo)
            self.summary.metadata_dropped += len(photo.dropped)

    def _count(self, found: Found) -> None:
        if found.path_bytes in self.known:
            self.summary.updated += 1
        else:
            self.summary.added += 1
