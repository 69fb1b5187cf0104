"""Searching a library: a query to ranked hits, through its catalog, encoder and indexes."""

from __future__ import annotations

import functools
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..catalog import Catalog
from ..concepts.filters import Filters
from ..concepts.fusion import fuse, query_words, rank_text_only
from ..encoders import Encoder, ImageEmbeddings
from ..encoders.relevance import weak_cutoff_of
from ..errors import InvalidInput
from ..images import Unusable, load_query_image
from ..query import ImageQuery, SearchQuery, check_query, has_photo_filters, moment_ns
from .hits import Hit, hit_of, judged
from .spaces import Spaces

__all__ = ["LibrarySearch"]

T = TypeVar("T")


class LibrarySearch:
    """The search half of a library (``path``): its photos in ``catalog``, the vector
    indexes of its ``spaces``, and the model they were embedded with."""

    def __init__(self, catalog: Catalog, spaces: Spaces, path: Path) -> None:
        self.catalog, self.spaces, self.path = catalog, spaces, path

    @property
    def encoder(self) -> Encoder:
        return self.spaces.encoder

    def search(self, query: SearchQuery) -> list[Hit]:
        filters = check_query(query)
        if _filters_only(query) and not filters.any and query.folder is None:
            # Filters on when, where and with what alone: SQLite sorts, no id lists.
            found = self.catalog.photos.newest(query.k, **self._photo_filters(query))
            return self._hits([(1.0, i) for i in found])
        subset = self._subset(query, filters)
        if subset is not None and not len(subset):
            return []
        if query.text_only:
            return self._hits(self._text_only(str(query.text), subset)[: query.k])
        if _filters_only(query):
            return self._hits(self._filtered_only(filters, subset, query.k))
        return self._judged(query, self._hits(self._similar(query, subset)))

    def _judged(self, query: SearchQuery, hits: list[Hit]) -> list[Hit]:
        """Hits under ``min_score`` dropped; a text query's hits under the model's
        calibrated cutoff flagged weak (the cutoff is calibrated on text-to-photo
        scores only: image and combined queries are never flagged)."""
        text_alone = query.image is None and query.like is None
        cutoff = self.weak_cutoff() if text_alone else None
        return judged(hits, cutoff=cutoff, min_score=query.min_score)

    def weak_cutoff(self) -> float | None:
        """The model's weak-match cutoff for text queries at the concepts level the
        library was indexed at (None: the model has none)."""
        return weak_cutoff_of(self.encoder, level=self.catalog.get_meta("concepts"))

    def _filtered_only(
        self, filters: Filters, subset: np.ndarray | None, k: int
    ) -> list[tuple[float, int]]:
        """(score, id) of a search with filters alone: by the concepts' confidence when
        it filters on concepts, else the photos newest first (score 1)."""
        if filters.any:
            return filters.rank(self.catalog.concepts, subset)[:k]
        ids = self.catalog.ids() if subset is None else subset
        return [(1.0, i) for i in self.catalog.photos.newest_first(ids)[:k]]

    def _similar(self, query: SearchQuery, subset: np.ndarray | None) -> list[tuple[float, int]]:
        """(score, id) of the photos closest to the query's text, image or stored photo."""
        text, like = query.text, query.like
        queries = self._queries(text, query.image, like, query.max_pixels)
        wanted = query.k + (like is not None)
        if len(queries) == 1:
            ((space, vector),) = queries.items()
            found = self._nearest(space, vector, wanted, subset)
        else:
            found = self._blend(queries, wanted, subset)
        if text is not None:
            found = self._fuse_words(text, queries, found, subset, query.text_weight)[:wanted]
        return [(s, i) for s, i in found if i != like][: query.k]

    def _nearest(
        self, space: str, vector: np.ndarray, k: int, subset: np.ndarray | None
    ) -> list[tuple[float, int]]:
        """(score, id) of the ``k`` nearest photos of one space, best first."""
        live = self.spaces.live(space, self.catalog)
        # The index allocates k results per query: never more than there are photos.
        k = min(k, len(live), k if subset is None else len(subset))
        if k < 1:
            return []
        scores, ids = live.search(vector[None], k, subset=subset)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def _hits(self, found: list[tuple[float, int]]) -> list[Hit]:
        """Hits in order, each with its stored concepts and the words read in it."""
        rows = self.catalog.rows(i for _, i in found)
        hits = [hit_of(rank, rows[i], s) for rank, (s, i) in enumerate(found, 1) if i in rows]
        stored = self.catalog.concepts.get(hit.id for hit in hits)
        return [
            replace(hit, concepts=stored[hit.id].confidences(), text=stored[hit.id].text)
            if hit.id in stored
            else hit
            for hit in hits
        ]

    def _text_only(self, text: str, subset: np.ndarray | None) -> list[tuple[float, int]]:
        words = query_words(text)
        if not words:
            raise InvalidInput(f"no words to look for in {text!r}: words need 3 or more letters")
        store = self.catalog.concepts
        if not len(store.ids_seen_by("ocr")):
            raise InvalidInput(
                f"no photo of {self.path} was read for words: index it with concepts 'full'"
                " (picsearch index FOLDER --concepts full)"
            )
        matches = store.match(words)
        matches = _within(matches, subset)
        return rank_text_only(matches)

    def _fuse_words(
        self,
        text: str,
        queries: dict[str, np.ndarray],
        found: list[tuple[float, int]],
        subset: np.ndarray | None,
        weight: float,
    ) -> list[tuple[float, int]]:
        """Add the full-text match of the query's words to the semantic scores."""
        words = query_words(text)
        if not words or weight == 0 or not self.catalog.concepts.has_text():
            return found
        matches = self.catalog.concepts.match(words)
        matches = _within(matches, subset)
        seen = {i for _, i in found}
        extra = np.array(sorted(set(matches) - seen), dtype=np.int64)
        semantic = list(found)
        if len(extra):
            scores = self._exact_scores(queries, extra)
            semantic += [
                (float(s), int(i)) for s, i in zip(scores, extra, strict=True) if s > -1e30
            ]
        return fuse(semantic, matches, weight)

    def vectors(
        self, space: str = "joint", *, ids: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, L2-normalised vectors) of one space, "joint" or "visual", in id order."""
        dims = self.catalog.dims
        dim = dims.get(space)
        if space not in ("joint", "visual") or (dims and not dim):
            have = [name for name, size in dims.items() if size]
            raise InvalidInput(f"no vector space {space!r} in {self.path}: use one of {have}")
        if not dim:  # no model bound yet: no photos
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        if ids is None:
            return self.catalog.space_vectors(space, dim)
        return self.catalog.space_vectors(space, dim, ids=sorted(int(i) for i in ids))

    def _queries(
        self, text: str | None, image: ImageQuery | None, like: int | None, max_pixels: int
    ) -> dict[str, np.ndarray]:
        """The query vector of each space a query touches."""
        queries = {}
        if like is not None:
            queries.update(self._stored_query(like))
        if image is not None:
            embedded = self._embed_query_image(image, max_pixels)
            if embedded.visual is not None:
                queries["visual"] = embedded.visual[0]
            else:
                queries["joint"] = embedded.joint[0]
        if text is not None:
            text_vector = self.encoder.embed_texts([text])[0]
            if "joint" in queries:  # a CLIP-like model: text and image share one space
                return {"joint": _unit(queries["joint"] + text_vector)}
            queries["joint"] = text_vector
        return queries

    def _blend(
        self, queries: dict[str, np.ndarray], k: int, subset: np.ndarray | None
    ) -> list[tuple[float, int]]:
        """Mean of the per-space similarities, over the union of each space's candidates."""
        wide = max(4 * k, 100)
        candidates: set[int] = set()
        for space, vector in queries.items():
            candidates.update(i for _, i in self._nearest(space, vector, wide, subset))
        order = np.array(sorted(candidates), dtype=np.int64)
        total = self._exact_scores(queries, order)
        top = _top_k(total, k)
        return [(float(total[i]), int(order[i])) for i in top if np.isfinite(total[i])]

    def _exact_scores(self, queries: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
        """Mean over the query's spaces of the cosine of each photo in ``order`` (sorted ids)."""
        total = np.zeros(len(order), dtype=np.float32)
        for space, vector in queries.items():
            ids, vectors = self.catalog.space_vectors(space, len(vector), ids=order)
            # A photo removed since the index was read is missing here: it scores -inf.
            scores = np.full(len(order), -np.inf, dtype=np.float32)
            scores[np.searchsorted(order, ids)] = vectors @ vector
            total += scores
        return total / len(queries)

    def _stored_query(self, item_id: int) -> dict[str, np.ndarray]:
        """The stored vector of a photo, in the space image queries use."""
        space = "visual" if self.encoder.visual_dim else "joint"
        ids, vectors = self.vectors(space, ids=[item_id])
        if not len(ids):
            raise InvalidInput(f"no photo with id {item_id} in {self.path}")
        return {space: vectors[0]}

    def _subset(self, query: SearchQuery, filters: Filters | None = None) -> np.ndarray | None:
        """The ids the query's filters allow; None when it has none."""
        subsets = []
        if filters is not None and filters.any:
            subsets.append(filters.ids(self.catalog.concepts))
        if query.folder is not None:
            path = os.path.abspath(os.path.expanduser(os.fspath(query.folder)))
            subsets.append(self.catalog.ids_under(os.fsencode(path)))
        if has_photo_filters(query):
            subsets.append(self._taken_subset(query))
        if not subsets:
            return None
        return functools.reduce(np.intersect1d, subsets)

    def _taken_subset(self, query: SearchQuery) -> np.ndarray:
        """Ids of the photos taken in the query's dates, place and camera."""
        return self.catalog.photos.ids_matching(**self._photo_filters(query))

    @staticmethod
    def _photo_filters(query: SearchQuery) -> dict[str, Any]:
        return {
            "place": query.place,
            "camera": query.camera,
            "after_ns": moment_ns(query.after, "after"),
            "before_ns": moment_ns(query.before, "before"),
        }

    def _embed_query_image(self, image: ImageQuery, max_pixels: int) -> ImageEmbeddings:
        try:
            picture = load_query_image(
                image, short_side=self.encoder.decode_size, max_pixels=max_pixels
            )
        except Unusable as exc:
            raise InvalidInput(str(exc)) from None
        return self.encoder.embed_images([picture])


def _filters_only(query: SearchQuery) -> bool:
    """Nothing to look for (no words, image or stored photo): the filters list photos."""
    return query.text is None and query.image is None and query.like is None


def _within(matches: dict[int, T], subset: np.ndarray | None) -> dict[int, T]:
    """The matches of the photos in ``subset`` (all of them when there is none)."""
    if subset is None:
        return matches
    allowed = set(subset.tolist())
    return {i: m for i, m in matches.items() if i in allowed}


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
