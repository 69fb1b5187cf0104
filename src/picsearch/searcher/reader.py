"""Query a one-file searcher: ONNX Runtime for the encoder, the saved index, numpy.

    from picsearch import TextSearcher, SearcherOptions
    searcher = TextSearcher.create_from_file("photos.searcher", SearcherOptions(max_results=5))
    for n in searcher.search("a dog on a chair", people=False).nearest_neighbors:
        print(n.path, n.distance)

Opening a searcher imports neither torch nor the model packages: the query
encoders travel inside the file as ONNX graphs. A searcher takes the library's
filters (folder, dates, people, text, black and white, colour, text-only) and
ranks as the library does; ``SearchResult.to_list()`` gives the library's hit
shape (``Hit.to_dict()``). ``search`` takes the library's ``SearchQuery`` too:
``searcher.search(SearchQuery(text="a dog", k=3))``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from PIL import Image

from .. import ann
from ..concepts.filters import Filters
from ..concepts.fusion import fuse
from ..errors import InvalidInput, PicsearchError
from ..images import Unusable, load_query_image
from ..query import SearchQuery, check_query
from .bundle import BundleReader, SearcherFileError
from .items import SearcherItems
from .preprocess import image_from_array, preprocess
from .results import NearestNeighbor, SearcherOptions, SearchResult

__all__ = ["ImageInput", "TextSearcher", "ImageSearcher"]

#: An example image: a path, a PIL image or an array of uint8 pixels.
ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray


class _Searcher:
    """The index and items of one space, shared by the text and image searchers."""

    _part: str = ""
    #: The query fields this kind of searcher cannot honour, and what to do instead.
    _refused: ClassVar[dict[str, str]] = {}

    def __init__(self, path: str | os.PathLike[str], options: SearcherOptions | None) -> None:
        self.options = options or SearcherOptions()
        self._bundle = BundleReader.open(path)
        self.path = self._bundle.path
        try:
            self._spec = self._bundle.manifest
            self.manifest = self._spec.raw
            self._items = SearcherItems.load(self._bundle, self._spec.items)
            self._index = self._load_index(self._space)
            self._load_encoder()
        except PicsearchError:
            raise
        except Exception as exc:  # a checked part a dependency still refuses
            raise self._bundle.error(f"it could not be opened ({exc})") from None
        finally:
            self._bundle.close()

    @classmethod
    def create_from_file(
        cls, path: str | os.PathLike[str], options: SearcherOptions | None = None
    ) -> Self:
        """Open the searcher file at ``path``."""
        return cls(path, options)

    @property
    def _space(self) -> str:
        raise NotImplementedError

    def _load_encoder(self) -> None:
        raise NotImplementedError

    def _load_index(self, space: str) -> ann.AnnIndex:
        dim = self._spec.model.dims.of(space)
        with tempfile.TemporaryDirectory(prefix="picsearch-searcher-") as folder:
            try:
                index = ann.load(self._bundle.extract(f"index/{space}", Path(folder)))
            except SearcherFileError:
                raise
            except PicsearchError as exc:
                raise self._bundle.error(f"its {space} index cannot be read ({exc})") from None
        if index.dim != dim or not np.isin(index.ids(), self._items.ids).all():
            raise self._bundle.error(f"its {space} index does not match its {dim}-d vectors")
        if len(index) != self._spec.spaces[space].size:
            declared = self._spec.spaces[space].size
            raise self._bundle.error(
                f"its {space} index holds {len(index)} vectors, not {declared}"
            )
        return index

    def _session(self, member: str, outputs: dict[str, str]) -> Any:
        """An ONNX Runtime session of an encoder graph whose outputs (name → space) give
        vectors of the manifest's dimension."""
        from ..encoders.onnx_export import open_session

        session = open_session(
            self._bundle.read(f"encoders/{member}"), threads=self.options.threads
        )
        shapes = {o.name: o.shape for o in session.get_outputs()}
        for name, space in outputs.items():
            if name not in shapes:
                raise self._bundle.error(f"its {self._part} encoder has no output {name!r}")
            dim, size = self._spec.model.dims.of(space), (shapes[name] or [None])[-1]
            if isinstance(size, int) and size != dim:
                raise self._bundle.error(
                    f"its {self._part} encoder gives {size}-d vectors, not the {dim} of "
                    f"model.dims.{space}"
                )
        return session

    # -- searching -------------------------------------------------------------------
    def _query(self, first: str, given: object, keywords: dict[str, Any]) -> SearchQuery:
        """The search as one SearchQuery: the one given, as it is, or one made of the
        keywords, ``given`` as its ``first`` field and the options' max_results and
        max_pixels where the keywords give none."""
        if isinstance(given, SearchQuery):
            if keywords:
                raise InvalidInput(
                    "give a search as a SearchQuery or as keywords, not both:"
                    f" put {', '.join(sorted(keywords))} in the SearchQuery"
                )
            return given
        if given is not None:
            if first in keywords:
                raise TypeError(f"search() got multiple values for argument '{first}'")
            keywords[first] = given
        for name, default in (("k", "max_results"), ("max_pixels", "max_pixels")):
            if keywords.get(name) is None:
                keywords[name] = getattr(self.options, default)
        return SearchQuery(**keywords)

    def _filtered(self, query: SearchQuery) -> tuple[Filters, np.ndarray | None]:
        """The query's concept filters, and the ids that pass all its filters (None: all),
        once the query is one this searcher can answer."""
        for name in ("k", "max_pixels"):
            value = getattr(query, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a whole number of at least 1, not {value!r}")
        for name, instead in self._refused.items():
            if getattr(query, name) is not None:
                raise InvalidInput(f"a {type(self).__name__} takes no {name}: {instead}")
        for name in _NEEDS_THE_LIBRARY:
            if getattr(query, name) is not None:
                raise InvalidInput(
                    f"searchers do not keep where and with what photos were taken: "
                    f"search by {name} in the library"
                )
        text = query.text
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise InvalidInput("the text query is empty: describe what to find")
        filters = check_query(query)
        return filters, self._items.subset(query.folder, query.after, query.before, filters)

    def _nearest(
        self, vector: np.ndarray, k: int, subset: np.ndarray | None
    ) -> list[tuple[float, int]]:
        """(score, id) of the ``k`` closest items of ``subset`` (None: all), best first."""
        k = min(k, len(self) if subset is None else len(subset))  # never allocate past the data
        if k < 1:
            return []
        scores, ids = self._index.search(vector[None].astype(np.float32), k, subset=subset)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def _result(
        self,
        found: list[tuple[float, int]],
        *,
        min_score: float | None = None,
        cutoff: float | None = None,
    ) -> SearchResult:
        """The results of ``found``: those under ``min_score`` dropped, those under the
        weak-match ``cutoff`` flagged weak, as ``Library.search`` judges its hits."""
        neighbours = []
        for score, item_id in found:
            if min_score is not None and score < min_score:
                continue
            metadata, concepts, text = self._items.details(item_id)
            weak = cutoff is not None and score < cutoff
            neighbour = NearestNeighbor(item_id, round(score, 6), metadata, concepts, text, weak)
            neighbours.append(neighbour)
        return SearchResult(neighbours)

    def __len__(self) -> int:
        return len(self._items)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        pass


#: Filters a searcher file has no data for: refused, never ignored.
_NEEDS_THE_LIBRARY = ("place", "camera")


class TextSearcher(_Searcher):
    """Find the items closest to a text."""

    _part = "text"
    _refused = dict.fromkeys(("image", "like"), "search by an example image with an ImageSearcher")

    @property
    def _space(self) -> str:
        return "joint"

    def _load_encoder(self) -> None:
        from tokenizers import Tokenizer

        spec = self._spec.encoders.text
        self._session_text = self._session(spec.onnx, {"embedding": "joint"})
        self._text_inputs = [i.name for i in self._session_text.get_inputs()]
        if not set(self._text_inputs) <= {"input_ids", "attention_mask"}:
            raise self._bundle.error(f"its text encoder takes unknown inputs {self._text_inputs}")
        tokenizer = self._bundle.read(f"encoders/{spec.tokenizer}").decode("utf-8")
        self._tokenizer = Tokenizer.from_str(tokenizer)

    def embed(self, text: str) -> np.ndarray:
        """The L2-normalised query vector of ``text``."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("the text query is empty: describe what to find")
        encoding = self._tokenizer.encode_batch([text])
        ids = np.array([e.ids for e in encoding], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoding], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        (vector,) = self._session_text.run(["embedding"], {n: feed[n] for n in self._text_inputs})
        return vector[0]

    def search(self, text: str | SearchQuery | None = None, /, **keywords: Any) -> SearchResult:
        """The items closest to ``text``, with the filters and scoring of ``Library.search``:
        the words read in the photos add to the score, ``text_only`` ranks by them alone,
        and filters without a text list the matching photos.

        Give a ``SearchQuery`` (taken as it is, its own ``k`` included), or its fields as
        keywords (``k`` defaults to the options' ``max_results``); a text searcher takes
        no ``image`` nor ``like``."""
        query = self._query("text", text, keywords)
        filters, subset = self._filtered(query)
        if subset is not None and not len(subset):
            return SearchResult([])
        if query.text_only:
            return self._result(self._items.text_only(str(query.text), subset)[: query.k])
        if query.text is None:
            return self._result(self._items.rank_by_concepts(filters, subset)[: query.k])
        found = self._by_words(str(query.text), query, subset)[: query.k]
        cutoff = self._spec.model.weak_cutoff
        return self._result(found, min_score=query.min_score, cutoff=cutoff)

    def _by_words(
        self, text: str, query: SearchQuery, subset: np.ndarray | None
    ) -> list[tuple[float, int]]:
        """The items nearest ``text``, with the full-text match of its words added to their
        scores as the library adds it: photos holding the words join with their own cosine."""
        vector = self.embed(text)
        found = self._nearest(vector, query.k, subset)
        weight = query.text_weight
        matches = self._items.text_matches(text, subset) if weight else None
        if matches is None:
            return found
        extra = np.array(sorted(set(matches) - {i for _, i in found}), dtype=np.int64)
        semantic = list(found)
        if len(extra):
            semantic += self._nearest(vector, len(extra), extra)
        return fuse(semantic, matches, weight)


class ImageSearcher(_Searcher):
    """Find the items closest to an example image (a path, a PIL image or an array)."""

    _part = "image"
    _refused = {
        "text": "search by words with a TextSearcher",
        "like": "give the photo itself as the example image",
    }

    @property
    def _space(self) -> str:
        return self._spec.encoders.image.space

    def _load_encoder(self) -> None:
        spec = self._spec.encoders.image
        self._preprocess = spec.preprocess
        self._session_image = self._session(spec.onnx, {name: name for name in spec.outputs})
        self._check_pixels_input()

    def _check_pixels_input(self) -> None:
        inputs = {i.name: i.shape for i in self._session_image.get_inputs()}
        if "pixels" not in inputs:
            raise self._bundle.error(f"its image encoder takes {sorted(inputs)}, not 'pixels'")
        height, width = self._preprocess.output_size
        shape = list(inputs["pixels"] or [])
        taken = shape[-2:] if len(shape) == 4 else [None, None]
        wanted = zip(taken, (height, width), strict=True)
        if any(isinstance(size, int) and size != want for size, want in wanted):
            raise self._bundle.error(
                f"its image encoder takes {shape} pixels, not the {height}x{width} of its "
                "preprocessing (encoders.image.preprocess)"
            )

    def embed(self, image: ImageInput, *, max_pixels: int | None = None) -> np.ndarray:
        """The L2-normalised query vector of ``image`` (decoded up to ``max_pixels``,
        default the options')."""
        pixels = preprocess(self._load(image, max_pixels), self._preprocess)
        outputs = self._session_image.run([self._space], {"pixels": pixels[None]})
        return outputs[0][0]

    def _load(self, image: ImageInput, max_pixels: int | None) -> Image.Image:
        if isinstance(image, np.ndarray):
            image = image_from_array(image)
        try:
            return load_query_image(
                image,
                short_side=self._preprocess.short_side,
                max_pixels=max_pixels or self.options.max_pixels,
            )
        except Unusable as exc:
            raise InvalidInput(str(exc)) from None

    def search(
        self, image: ImageInput | SearchQuery | None = None, /, **keywords: Any
    ) -> SearchResult:
        """The items closest to ``image``, among those that pass the filters (as in
        ``Library.search``).

        Give a ``SearchQuery`` (taken as it is, its own ``k`` and ``max_pixels``
        included), or its fields as keywords (defaults: the options' ``max_results`` and
        ``max_pixels``); an image searcher takes no ``text`` nor ``like``."""
        query = self._query("image", image, keywords)
        if query.image is None:
            raise InvalidInput("nothing to search for: give an example image")
        _, subset = self._filtered(query)
        if subset is not None and not len(subset):
            return SearchResult([])
        vector = self.embed(query.image, max_pixels=query.max_pixels)
        found = self._nearest(vector, query.k, subset)
        return self._result(found, min_score=query.min_score)
