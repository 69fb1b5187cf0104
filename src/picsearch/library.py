"""A photo library: catalog + encoder + vector search, the object behind picsearch.open()."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import ann
from .catalog import Catalog, Row
from .concepts import DEFAULT_LEVEL, ConceptBank, check_level
from .concepts.filters import Filters
from .concepts.fusion import fuse, query_words, rank_text_only
from .encoders import Encoder, load_encoder
from .errors import InvalidInput
from .images import DEFAULT_MAX_PIXELS, Unusable, load_query_image
from .ingest import IndexInterrupted, IndexSummary, index_paths
from .paths import default_db_path
from .query import ImageQuery, Moment, SearchQuery, moment_ns
from .user_metadata import MetadataSource, attach_metadata
from .vector_index import SpaceIndex

__all__ = ["Library", "Hit", "Item", "LibraryInfo", "open", "row_metadata"]

#: The concepts level of a library that was never given one.
DEFAULT_CONCEPTS = DEFAULT_LEVEL


@dataclass(frozen=True)
class Hit:
    """One search result. ``score`` is a cosine similarity: higher is closer (plus the
    full-text bonus when the query's words are in the photo, see ``search``).

    ``concepts`` maps what the concept bank saw in the photo to its confidence
    ("person": 0.91, "color:red": 0.8, ...); ``text`` is the words read in it.
    """

    rank: int
    id: int
    path: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, float] = field(default_factory=dict)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = os.fsencode(self.path).decode("utf-8", "backslashreplace")
        return data


@dataclass(frozen=True)
class Item:
    """One photo of the library, as stored: its id, path and metadata."""

    id: int
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = os.fsencode(self.path).decode("utf-8", "backslashreplace")
        return data


@dataclass(frozen=True)
class LibraryInfo:
    path: str
    items: int
    model: str | None
    model_id: str | None
    dims: dict[str, int | None]
    schema_version: int
    size_bytes: int
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Library:
    """Index folders of photos and search them by text, by example image, or both."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        create: bool = True,
        index: str | ann.IndexOptions = "auto",
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._index_options = ann.IndexOptions(backend=index) if isinstance(index, str) else index
        self._catalog = Catalog(self.path, create=create)
        stored = self._catalog.model_spec
        self.model = model or stored or "default"
        self._encoder: Encoder | None = None
        self._spaces: dict[str, SpaceIndex] = {}
        self._banks: dict[tuple[str, int], ConceptBank] = {}
        if model is not None:
            self._catalog.check_model_spec(model)

    # -- the encoder, loaded on first use ------------------------------------
    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            encoder = load_encoder(self.model)
            self._catalog.bind_model(self.model, encoder.model_id, encoder.dim, encoder.visual_dim)
            self._encoder = encoder
        return self._encoder

    # -- indexing --------------------------------------------------------------
    def index(
        self,
        paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        batch_size: int = 32,
        workers: int | None = None,
        progress: bool = False,
        metadata: MetadataSource | None = None,
        concepts: str | None = None,
    ) -> IndexSummary:
        """Add new and changed images under ``paths``, drop the deleted ones.

        ``metadata`` attaches your own JSON-serialisable fields to the photos: a
        dict from path to dict, or a function of the path returning a dict (or
        None). They come back in each hit's ``metadata`` and in exported searchers.

        ``concepts`` ("off", "fast" or "full") picks the detectors run on each photo
        (people, text, colours, objects; see docs/concepts.md). None: the level this
        library was last indexed with, else "fast". Photos indexed at a lower level
        are looked at again by the detectors they missed.

        Ctrl-C raises ``IndexInterrupted`` (a KeyboardInterrupt) with the summary of
        what was kept: every batch committed so far; calling ``index`` again goes on.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        _check_positive(batch_size=batch_size, max_pixels=max_pixels)
        self._catalog.verify_writable()
        summary = index_paths(
            self._catalog,
            self.encoder,
            paths,
            max_pixels=max_pixels,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            concepts=self._concept_bank(concepts, workers),
        )
        try:
            if metadata is not None:
                attach_metadata(self._catalog, paths, metadata)
            for space in self._space_names():
                # Saved atomically: stopped midway, the previous index stays in use, and
                # the next search brings it up to date from the catalog.
                self._space(space).maintain(self._catalog)
        except KeyboardInterrupt:
            raise IndexInterrupted(summary) from None
        return summary

    def _concept_bank(self, level: str | None, workers: int | None) -> ConceptBank | None:
        if level is None:
            level = self._catalog.get_meta("concepts") or DEFAULT_CONCEPTS
        else:
            self._catalog.set_meta("concepts", check_level(level))
        if level == "off":
            return None
        key = (level, workers or os.cpu_count() or 1)
        if key not in self._banks:
            self._banks[key] = ConceptBank(level, workers=key[1])
        return self._banks[key]

    def _space_names(self) -> list[str]:
        return ["joint", "visual"] if self.encoder.visual_dim else ["joint"]

    def _space(self, name: str) -> SpaceIndex:
        if name not in self._spaces:
            dim = self.encoder.dim if name == "joint" else self.encoder.visual_dim
            folder = Path(f"{self.path}.index")
            self._spaces[name] = SpaceIndex(folder, name, int(dim or 0), self._index_options)
        return self._spaces[name]

    # -- search ------------------------------------------------------------------
    def search(self, query: SearchQuery | str | None = None, /, **keywords: Any) -> list[Hit]:
        """The ``k`` closest images to a text, an example image, or both (scores averaged).

        Give a ``SearchQuery``, or its fields as keywords (the text may come first):
        ``lib.search("a cat", k=5)`` is ``lib.search(SearchQuery(text="a cat", k=5))``.

        ``like`` searches by the stored photo with that id ("more like this"; the
        photo itself is left out). ``folder`` keeps the photos under that folder;
        ``after``/``before`` keep those whose file time is in [after, before).

        Concept filters (photos indexed with concepts): ``people`` True keeps photos
        with people, False those without; ``has_text``, ``bw`` (black and white) the
        same; ``color`` keeps photos where that colour dominates. Filters alone list
        the matching photos (scored by their mean confidence in the wanted concepts).
        A text query is also matched against the words read in the photos:
        ``score = cosine + text_weight * share of the query's words found`` (see
        ``picsearch.concepts.fusion``); ``text_only`` ranks by those words alone.
        """
        if isinstance(query, SearchQuery):
            if keywords:
                raise InvalidInput(
                    "give a search as a SearchQuery or as keywords, not both:"
                    f" put {', '.join(sorted(keywords))} in the SearchQuery"
                )
            return self._search(query)
        if query is None:
            return self._search(SearchQuery(**keywords))
        return self._search(SearchQuery(text=query, **keywords))

    def _search(self, query: SearchQuery) -> list[Hit]:
        filters = _check_query(query)
        subset = self._subset(query.folder, query.after, query.before, filters)
        if subset is not None and not len(subset):
            return []
        if query.text_only:
            return self._hits(self._text_only(str(query.text), subset)[: query.k])
        if query.text is None and query.image is None and query.like is None:
            return self._hits(filters.rank(self._catalog.concepts, subset)[: query.k])
        return self._hits(self._similar(query, subset))

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
        live = self._space(space).sync(self._catalog)
        # The index allocates k results per query: never more than there are photos.
        k = min(k, len(live), k if subset is None else len(subset))
        if k < 1:
            return []
        scores, ids = live.search(vector[None], k, subset=subset)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def _hits(self, found: list[tuple[float, int]]) -> list[Hit]:
        """Hits in order, each with its stored concepts and the words read in it."""
        rows = self._catalog.rows(i for _, i in found)
        hits = [_hit(rank, rows[i], s) for rank, (s, i) in enumerate(found, 1) if i in rows]
        stored = self._catalog.concepts.get(hit.id for hit in hits)
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
        store = self._catalog.concepts
        if not len(store.ids_seen_by("ocr")):
            raise InvalidInput(
                f"no photo of {self.path} was read for words: index it with concepts 'full'"
                " (picsearch index FOLDER --concepts full)"
            )
        matches = store.match(words)
        if subset is not None:
            allowed = set(subset.tolist())
            matches = {i: m for i, m in matches.items() if i in allowed}
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
        if not words or weight == 0 or not self._catalog.concepts.has_text():
            return found
        matches = self._catalog.concepts.match(words)
        if subset is not None:
            allowed = set(subset.tolist())
            matches = {i: m for i, m in matches.items() if i in allowed}
        seen = {i for _, i in found}
        extra = np.array(sorted(set(matches) - seen), dtype=np.int64)
        semantic = list(found)
        if len(extra):
            scores = self._exact_scores(queries, extra)
            semantic += [
                (float(s), int(i)) for s, i in zip(scores, extra, strict=True) if s > -1e30
            ]
        return fuse(semantic, matches, weight)

    def get(self, item_id: int) -> Item:
        """The stored photo with this id."""
        _check_id(item_id, "id")
        row = self._catalog.rows([item_id]).get(item_id)
        if row is None:
            raise InvalidInput(f"no photo with id {item_id} in {self.path}")
        return Item(id=row.id, path=row.path, metadata=row_metadata(row))

    def vectors(
        self, space: str = "joint", *, ids: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, L2-normalised vectors) of one space, "joint" or "visual", in id order."""
        dims = self._catalog.dims
        if space not in ("joint", "visual") or (dims and not dims.get(space)):
            have = [name for name, dim in dims.items() if dim]
            raise InvalidInput(f"no vector space {space!r} in {self.path}: use one of {have}")
        if not dims:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        if ids is None:
            return self._catalog.space_vectors(space, dims[space])
        return self._catalog.space_vectors(space, dims[space], ids=sorted(int(i) for i in ids))

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
            ids, vectors = self._catalog.space_vectors(space, len(vector), ids=order)
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

    def _subset(
        self,
        folder: str | os.PathLike[str] | None,
        after: Moment | None,
        before: Moment | None,
        filters: Filters | None = None,
    ) -> np.ndarray | None:
        subsets = []
        if filters is not None and filters.any:
            subsets.append(filters.ids(self._catalog.concepts))
        if folder is not None:
            path = os.path.abspath(os.path.expanduser(os.fspath(folder)))
            subsets.append(self._catalog.ids_under(os.fsencode(path)))
        if after is not None or before is not None:
            low, high = moment_ns(after, "after"), moment_ns(before, "before")
            subsets.append(self._catalog.ids_between(low, high))
        if not subsets:
            return None
        return functools.reduce(np.intersect1d, subsets)

    def _embed_query_image(self, image: ImageQuery, max_pixels: int):
        try:
            picture = load_query_image(
                image, short_side=self.encoder.decode_size, max_pixels=max_pixels
            )
        except Unusable as exc:
            raise InvalidInput(str(exc)) from None
        return self.encoder.embed_images([picture])

    def concepts(self, photo: int | str | os.PathLike[str]) -> dict[str, Any]:
        """What the concept bank stored for a photo (an id or a path): why it matches.

        ``{"id", "path", "detectors", "concepts": [{"name", "confidence", "phrase"}],
        "text"}``; ``detectors`` is empty for a photo indexed without concepts.
        """
        item_id = photo if isinstance(photo, int) else self._item_id(photo)
        item = self.get(item_id)
        stored = self._catalog.concepts.get([item_id]).get(item_id)
        return {
            "id": item.id,
            "path": item.to_dict()["path"],
            "detectors": list(stored.detectors) if stored else [],
            "concepts": [asdict(c) for c in stored.concepts] if stored else [],
            "text": stored.text if stored else "",
        }

    def _item_id(self, path: str | os.PathLike[str]) -> int:
        absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
        item_id = self._catalog.concepts.item_id(os.fsencode(absolute))
        if item_id is None:
            raise InvalidInput(f"{absolute} is not in {self.path}: index its folder first")
        return item_id

    # -- public reads for the packages built on a library (searcher export, server) ----
    def space_names(self) -> list[str]:
        """The vector spaces this library's model has: ["joint"] or ["joint", "visual"]."""
        return self._space_names()

    def space_index(self, space: str) -> ann.AnnIndex:
        """The vector index of one space, brought up to date with the catalog."""
        return self._space(space).sync(self._catalog).index

    def ids(self) -> np.ndarray:
        """Every photo's id, ascending."""
        return self._catalog.ids()

    def rows(self, ids: Iterable[int]) -> dict[int, Row]:
        """What the catalog stores of these photos (path, size, hash, ...), by id."""
        return self._catalog.rows(ids)

    def stored_concepts(self, ids: Iterable[int]) -> dict[int, Any]:
        """What the concept bank stored for these photos, by id (photos it saw)."""
        return self._catalog.concepts.get(list(ids))

    # -- the rest ---------------------------------------------------------------
    def info(self) -> LibraryInfo:
        catalog = self._catalog
        dims = catalog.dims
        return LibraryInfo(
            path=str(self.path),
            items=catalog.count(),
            model=catalog.model_spec,
            model_id=catalog.get_meta("model_id"),
            dims=dims,
            schema_version=int(catalog.get_meta("schema_version") or 0),
            size_bytes=catalog.size_on_disk() + _folder_size(Path(f"{self.path}.index")),
            indexes=self._index_summaries() if dims else {},
        )

    def _index_summaries(self) -> dict[str, dict[str, Any]]:
        summaries = {}
        for space in self._space_names():
            info = self._space(space).sync(self._catalog).info()
            auto = info.get("auto") or {}
            summaries[space] = {
                "backend": info["backend"],
                "size": info["size"],
                "bytes_per_vector": info["bytes_per_vector"],
                "recall@10": _recall(info),
                "chosen_by": auto.get("reason", "options"),
            }
        return summaries

    def __len__(self) -> int:
        return self._catalog.count()

    def close(self) -> None:
        self._catalog.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open(  # noqa: A001 - the natural name for the library's entry point
    path: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    create: bool = True,
    index: str | ann.IndexOptions = "auto",
) -> Library:
    """Open the library at ``path`` (the default location if None), creating it if missing.

    ``index`` picks the vector index: "auto" (exact search for small libraries,
    a tuned ScaNN or FAISS index for large ones), a backend name, or IndexOptions.
    """
    return Library(path, model=model, create=create, index=index)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a whole number of at least 1, not {value!r}")


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _recall(info: dict[str, Any]) -> float | None:
    if info["backend"] == "exact":
        return 1.0
    return (info.get("recall") or {}).get("recall")


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def row_metadata(row: Row) -> dict[str, Any]:
    return {
        "width": row.width,
        "height": row.height,
        "size": row.size,
        "mtime": row.mtime_ns / 1e9,
        **row.metadata,
    }


def _hit(rank: int, row: Row, score: float) -> Hit:
    return Hit(
        rank=rank, id=row.id, path=row.path, score=round(score, 6), metadata=row_metadata(row)
    )


def _check_query(query: SearchQuery) -> Filters:
    """The query's concept filters, once the query is known to make sense."""
    _check_positive(k=query.k)
    text, image, like = query.text, query.image, query.like
    if like is not None:
        _check_id(like, "like")
    if text is not None and not text.strip():
        raise InvalidInput("the text query is empty: describe what to find")
    if image is not None and like is not None:
        raise InvalidInput("give an example image or a stored photo id (like=), not both")
    filters = Filters(people=query.people, has_text=query.has_text, bw=query.bw, color=query.color)
    if query.text_only and (text is None or image is not None or like is not None):
        raise InvalidInput("a text-only search looks for words: give words, and no image")
    if text is None and image is None and like is None and not filters.any:
        raise InvalidInput("nothing to search for: give a text query or an image")
    return filters


#: Photo ids are SQLite integers: 64-bit, signed.
_MAX_ID = 2**63 - 1


def _check_id(value: object, name: str) -> None:
    """A photo id given by the user: a whole number SQLite can hold."""
    whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not whole or not 0 <= int(value) <= _MAX_ID:  # type: ignore[arg-type]
        raise InvalidInput(
            f"{name}={value!r} is not a photo id: ids are whole numbers from 0 to {_MAX_ID}"
            " (search --json shows them)"
        )
