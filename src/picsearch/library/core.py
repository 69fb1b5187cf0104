"""A photo library: catalog + encoder + vector search, the object behind picsearch.open()."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import ann
from ..catalog import Catalog, Row
from ..concepts import DEFAULT_LEVEL, ConceptBank, check_level
from ..encoders import Encoder, load_encoder
from ..errors import InvalidInput
from ..images import DEFAULT_MAX_PIXELS
from ..ingest import IndexInterrupted, IndexSummary, MetadataSource, attach_metadata, index_paths
from ..paths import default_db_path
from ..query import SearchQuery, check_id, check_positive
from ..query_phrases import Understood, understand_query
from .hits import Hit, Item, LibraryInfo, row_metadata
from .search import LibrarySearch
from .spaces import Spaces

__all__ = ["Library", "Results", "open"]


class Results(list[Hit]):
    """The hits of a search, best first: a list, with ``understood``, what the query's
    words said of when and where (``Library.search(..., understand=True)``; None when
    they said nothing, or understanding was not asked for)."""

    def __init__(self, hits: Iterable[Hit] = (), *, understood: Understood | None = None):
        super().__init__(hits)
        self.understood = understood


#: The concepts level of a library that was never given one.
DEFAULT_CONCEPTS = DEFAULT_LEVEL


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
        options = ann.IndexOptions(backend=index) if isinstance(index, str) else index
        self._catalog = Catalog(self.path, create=create)
        stored = self._catalog.model_spec
        self.model = model or stored or "default"
        self._encoder: Encoder | None = None
        self._spaces = Spaces(Path(f"{self.path}.index"), options, lambda: self.encoder)
        self._searching = LibrarySearch(self._catalog, self._spaces, self.path)
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
        check_positive(batch_size=batch_size, max_pixels=max_pixels)
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
            self._spaces.maintain(self._catalog)
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

    # -- search ------------------------------------------------------------------
    def search(
        self,
        query: SearchQuery | str | None = None,
        /,
        *,
        understand: bool = False,
        **keywords: Any,
    ) -> Results:
        """The ``k`` closest images to a text, an example image, or both (scores averaged).

        Give a ``SearchQuery``, or its fields as keywords (the text may come first):
        ``lib.search("a cat", k=5)`` is ``lib.search(SearchQuery(text="a cat", k=5))``.

        ``like`` searches by the stored photo with that id ("more like this"; the
        photo itself is left out). ``folder`` keeps the photos under that folder;
        ``after``/``before`` keep those taken in [after, before) (the capture time
        read from EXIF/XMP, else the file time); ``place`` those taken in that city,
        region or country, ``camera`` with that camera (part of its make and model),
        both ignoring case and accents. These alone list the photos newest first.

        Concept filters (photos indexed with concepts): ``people`` True keeps photos
        with people, False those without; ``has_text``, ``bw`` (black and white) the
        same; ``color`` keeps photos where that colour dominates. Filters alone list
        the matching photos (scored by their mean confidence in the wanted concepts).
        A text query is also matched against the words read in the photos:
        ``score = cosine + text_weight * share of the query's words found`` (see
        ``picsearch.concepts.fusion``); ``text_only`` ranks by those words alone.

        A text query's hits scoring under the model's calibrated weak-match cutoff
        come back with ``weak=True`` (when all are weak, nothing matched well);
        ``min_score`` drops the hits of a similarity search scoring under it instead.

        ``understand`` True reads when and where from the words: "beach in Lisbon
        summer 2019" searches "beach" taken 2019-06-01..2019-08-31 in Lisbon (years,
        months, seasons, phrases relative to today, the library's place names; see
        ``picsearch.understand``); filters given by hand win over the words'. The
        hits come as ``Results``, a list whose ``understood`` says what was read.
        """
        if isinstance(query, SearchQuery):
            if keywords:
                raise InvalidInput(
                    "give a search as a SearchQuery or as keywords, not both:"
                    f" put {', '.join(sorted(keywords))} in the SearchQuery"
                )
        elif query is None:
            query = SearchQuery(**keywords)
        else:
            query = SearchQuery(text=query, **keywords)
        understood = None
        if understand:
            query, understood = understand_query(query, places=self.place_names())
        return Results(self._searching.search(query), understood=understood)

    def weak_cutoff(self) -> float | None:
        """The score under which a text query's hit is a weak match, for this library's
        model at the concepts level it was indexed at (None: the model has none)."""
        return self._searching.weak_cutoff()

    def get(self, item_id: int) -> Item:
        """The stored photo with this id."""
        check_id(item_id, "id")
        row = self._catalog.rows([item_id]).get(item_id)
        if row is None:
            raise InvalidInput(f"no photo with id {item_id} in {self.path}")
        return Item(id=row.id, path=row.path, metadata=row_metadata(row))

    def vectors(
        self, space: str = "joint", *, ids: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, L2-normalised vectors) of one space, "joint" or "visual", in id order."""
        return self._searching.vectors(space, ids=ids)

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
    def place_names(self) -> list[str]:
        """The city, region and country names of the library's photos, sorted."""
        return self._catalog.photos.place_names()

    def space_names(self) -> list[str]:
        """The vector spaces this library's model has: ["joint"] or ["joint", "visual"]."""
        return self._spaces.names()

    def space_index(self, space: str) -> ann.AnnIndex:
        """The vector index of one space, brought up to date with the catalog."""
        return self._spaces.live(space, self._catalog).index

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
            size_bytes=catalog.size_on_disk() + self._spaces.size_on_disk(),
            indexes=self._spaces.summaries(catalog) if dims else {},
        )

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
