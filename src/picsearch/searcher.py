"""Query a one-file searcher: ONNX Runtime for the encoder, the saved index, numpy.

    from picsearch import TextSearcher, SearcherOptions
    searcher = TextSearcher.create_from_file("photos.searcher", SearcherOptions(max_results=5))
    for n in searcher.search("a dog on a chair", people=False).nearest_neighbors:
        print(n.path, n.distance)

Opening a searcher imports neither torch nor the model packages: the query
encoders travel inside the file as ONNX graphs. A searcher takes the library's
filters (folder, dates, people, text, black and white, colour, text-only) and
ranks as the library does; ``SearchResult.to_list()`` gives the library's hit
shape (``Hit.to_dict()``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import ann
from .bundle import BundleReader, SearcherFileError
from .concepts.filters import Filters
from .concepts.fusion import TEXT_WEIGHT, fuse
from .errors import InvalidInput, PicsearchError
from .images import DEFAULT_MAX_PIXELS, Unusable, load_query_image
from .library import Hit
from .query import Moment
from .searcher_items import SearcherItems
from .searcher_manifest import ManifestFieldError, Preprocess

__all__ = [
    "SearcherOptions",
    "NearestNeighbor",
    "SearchResult",
    "TextSearcher",
    "ImageSearcher",
    "SearcherFileError",
    "preprocess",
]

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray
Folder = str | os.PathLike[str]


@dataclass(frozen=True, kw_only=True)
class SearcherOptions:
    """max_results: neighbours per query; threads: ONNX Runtime threads (None: all cores)."""

    max_results: int = 10
    threads: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        for name in ("max_results", "max_pixels") + (("threads",) if self.threads else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a whole number of at least 1, not {value!r}")


@dataclass(frozen=True)
class NearestNeighbor:
    """One result. ``score`` is the cosine similarity (plus the full-text bonus, as in
    ``Library.search``); ``distance`` = 1 - score. ``metadata`` holds ``path``, the
    file's fields and the application's; ``concepts`` and ``text`` what was seen in
    the photo (empty for files exported before searchers kept them)."""

    id: int
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, float] = field(default_factory=dict)
    text: str = ""

    @property
    def path(self) -> str:
        return str(self.metadata.get("path", ""))

    @property
    def distance(self) -> float:
        return round(1.0 - self.score, 6)

    def to_hit(self, rank: int) -> Hit:
        """This result as the library's Hit: the one shape for results, wherever found."""
        metadata = {key: value for key, value in self.metadata.items() if key != "path"}
        return Hit(rank, self.id, self.path, self.score, metadata, dict(self.concepts), self.text)


@dataclass(frozen=True)
class SearchResult:
    nearest_neighbors: list[NearestNeighbor]

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.nearest_neighbors]

    def __len__(self) -> int:
        return len(self.nearest_neighbors)

    def hits(self) -> list[Hit]:
        return [n.to_hit(rank) for rank, n in enumerate(self.nearest_neighbors, 1)]

    def to_list(self) -> list[dict[str, Any]]:
        """The results as ``Library.search`` hits' dicts: rank, id, path, score, metadata,
        concepts, text."""
        return [hit.to_dict() for hit in self.hits()]


class _Searcher:
    """The index and items of one space, shared by the text and image searchers."""

    _part: str = ""

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
    def create_from_file(cls, path: str | os.PathLike[str], options: SearcherOptions | None = None):
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

    def _session(self, member: str, outputs: dict[str, str]):
        """An ONNX Runtime session of an encoder graph whose outputs (name → space) give
        vectors of the manifest's dimension."""
        from .encoders.onnx_export import open_session

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
    def _k(self, k: int | None) -> int:
        k = self.options.max_results if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInput(f"k must be a whole number of at least 1, not {k!r}")
        return k

    def _nearest(
        self, vector: np.ndarray, k: int, subset: np.ndarray | None
    ) -> list[tuple[float, int]]:
        """(score, id) of the ``k`` closest items of ``subset`` (None: all), best first."""
        k = min(k, len(self) if subset is None else len(subset))  # never allocate past the data
        if k < 1:
            return []
        scores, ids = self._index.search(vector[None].astype(np.float32), k, subset=subset)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def _result(self, found: list[tuple[float, int]]) -> SearchResult:
        neighbours = []
        for score, item_id in found:
            metadata, concepts, text = self._items.details(item_id)
            neighbours.append(NearestNeighbor(item_id, round(score, 6), metadata, concepts, text))
        return SearchResult(neighbours)

    def __len__(self) -> int:
        return len(self._items)

    def __enter__(self):
        return self

    def __exit__(self, *_: object) -> None:
        pass


class TextSearcher(_Searcher):
    """Find the items closest to a text."""

    _part = "text"

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

    def search(
        self,
        text: str | None = None,
        *,
        k: int | None = None,
        folder: Folder | None = None,
        after: Moment | None = None,
        before: Moment | None = None,
        people: bool | None = None,
        has_text: bool | None = None,
        bw: bool | None = None,
        color: str | None = None,
        text_only: bool = False,
        text_weight: float = TEXT_WEIGHT,
    ) -> SearchResult:
        """The items closest to ``text``, with the filters and scoring of ``Library.search``:
        the words read in the photos add to the score, ``text_only`` ranks by them alone,
        and filters without a text list the matching photos."""
        k = self._k(k)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise InvalidInput("the text query is empty: describe what to find")
        filters = Filters(people=people, has_text=has_text, bw=bw, color=color)
        if text_only and text is None:
            raise InvalidInput("a text-only search looks for words: give words, and no image")
        if text is None and not filters.any:
            raise InvalidInput("nothing to search for: give a text query or an image")
        subset = self._items.subset(folder, after, before, filters)
        if subset is not None and not len(subset):
            return SearchResult([])
        if text_only:
            return self._result(self._items.text_only(str(text), subset)[:k])
        if text is None:
            return self._result(self._items.rank_by_concepts(filters, subset)[:k])
        vector = self.embed(text)
        found = self._nearest(vector, k, subset)
        return self._result(self._fuse_words(text, vector, found, subset, text_weight)[:k])

    def _fuse_words(
        self,
        text: str,
        vector: np.ndarray,
        found: list[tuple[float, int]],
        subset: np.ndarray | None,
        weight: float,
    ) -> list[tuple[float, int]]:
        """Add the full-text match of the query's words to the semantic scores, as the
        library does: photos holding the words join with their own cosine."""
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

    def embed(self, image: ImageInput) -> np.ndarray:
        pixels = preprocess(self._load(image), self._preprocess)
        outputs = self._session_image.run([self._space], {"pixels": pixels[None]})
        return outputs[0][0]

    def _load(self, image: ImageInput) -> Image.Image:
        if isinstance(image, np.ndarray):
            image = _from_array(image)
        try:
            return load_query_image(
                image, short_side=self._preprocess.short_side, max_pixels=self.options.max_pixels
            )
        except Unusable as exc:
            raise InvalidInput(str(exc)) from None

    def search(
        self,
        image: ImageInput,
        *,
        k: int | None = None,
        folder: Folder | None = None,
        after: Moment | None = None,
        before: Moment | None = None,
        people: bool | None = None,
        has_text: bool | None = None,
        bw: bool | None = None,
        color: str | None = None,
    ) -> SearchResult:
        """The items closest to ``image``, among those that pass the filters (as in
        ``Library.search``)."""
        k = self._k(k)
        filters = Filters(people=people, has_text=has_text, bw=bw, color=color)
        subset = self._items.subset(folder, after, before, filters)
        if subset is not None and not len(subset):
            return SearchResult([])
        return self._result(self._nearest(self.embed(image), k, subset))


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InvalidInput(
            f"an image array must be (h, w), (h, w, 3) or (h, w, 4), not {array.shape}"
        )
    if array.dtype != np.uint8:
        raise InvalidInput(f"an image array must hold uint8 pixels, not {array.dtype}")
    return Image.fromarray(array.squeeze(2) if array.ndim == 3 and array.shape[2] == 1 else array)


_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def preprocess(image: Image.Image, spec: Preprocess | Mapping[str, Any]) -> np.ndarray:
    """An RGB image to the (3, H, W) float32 array an exported image graph takes.

    ``spec`` is checked (types and ranges) when given as the manifest's dict."""
    if not isinstance(spec, Preprocess):
        try:
            spec = Preprocess.from_json(spec)
        except ManifestFieldError as exc:
            raise InvalidInput(f"image preprocessing: {exc}") from None
    image = image.convert("RGB") if image.mode != "RGB" else image
    resample = _RESAMPLE[spec.resample]
    if spec.resize:
        height, width = spec.resize
        image = image.resize((width, height), resample)
    elif spec.resize_short:
        image = _resize_short(image, spec, resample)
    if spec.crop:
        image = _centre_crop(image, spec)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels * np.float32(spec.scale) + np.float32(spec.shift)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _centre_crop(image: Image.Image, spec: Preprocess) -> Image.Image:
    crop_h, crop_w = spec.crop  # type: ignore[misc]
    if spec.pad_to_crop and (image.width < crop_w or image.height < crop_h):
        canvas = Image.new("RGB", (max(image.width, crop_w), max(image.height, crop_h)))
        canvas.paste(
            image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2)
        )
        image = canvas
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def _resize_short(image: Image.Image, spec: Preprocess, resample) -> Image.Image:
    """Short side to ``resize_short``: rounded and never below the crop (picsearch's
    encoders), or with ``rounding="floor"`` as Hugging Face image processors do."""
    short = int(spec.resize_short or 0)
    width, height = image.size
    if spec.rounding == "floor":
        if width <= height:
            size = (short, int(short * height / width))
        else:
            size = (int(short * width / height), short)
        return image if size == image.size else image.resize(size, resample)
    if min(width, height) == short:
        return image
    scale = short / min(width, height)
    low = max(spec.crop or (1,))
    return image.resize((max(low, round(width * scale)), max(low, round(height * scale))), resample)
