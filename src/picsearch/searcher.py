"""Query a one-file searcher: ONNX Runtime for the encoder, the saved index, numpy.

    from picsearch import TextSearcher, SearcherOptions
    searcher = TextSearcher.create_from_file("photos.searcher", SearcherOptions(max_results=5))
    for n in searcher.search("a dog on a chair").nearest_neighbors:
        print(n.metadata["path"], n.distance)

Opening a searcher imports neither torch nor the model packages: the query
encoders travel inside the file as ONNX graphs.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import ann
from .bundle import BundleReader, SearcherFileError
from .errors import InvalidInput, PicsearchError
from .images import DEFAULT_MAX_PIXELS, Unusable, load_query_image

__all__ = [
    "SearcherOptions",
    "NearestNeighbor",
    "SearchResult",
    "TextSearcher",
    "ImageSearcher",
    "SearcherFileError",
]

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray


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
    """One result. ``score`` is the cosine similarity; ``distance`` = 1 - score."""

    id: int
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def distance(self) -> float:
        return round(1.0 - self.score, 6)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "distance": self.distance, **self.metadata}


@dataclass(frozen=True)
class SearchResult:
    nearest_neighbors: list[NearestNeighbor]

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.nearest_neighbors]

    def __len__(self) -> int:
        return len(self.nearest_neighbors)

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(rank=i, **n.to_dict()) for i, n in enumerate(self.nearest_neighbors, 1)]


class _Searcher:
    """The index and item metadata of one space, shared by the text and image searchers."""

    _part: str = ""

    def __init__(self, path: str | os.PathLike[str], options: SearcherOptions | None) -> None:
        self.options = options or SearcherOptions()
        self._bundle = BundleReader.open(path)
        try:
            self.manifest = self._bundle.manifest
            self._load_encoder()
            self._ids, self._metadata = self._load_items()
            self._index = self._load_index(self._space)
        except PicsearchError:
            raise
        except Exception as exc:  # a checked part a dependency still refuses
            raise SearcherFileError(f"{path} could not be opened: {exc}") from None
        finally:
            self._bundle.close()

    @classmethod
    def create_from_file(cls, path: str | os.PathLike[str], options: SearcherOptions | None = None):
        """Open the searcher file at ``path``."""
        return cls(path, options)

    def _field(self, *keys: str, kind: type = dict) -> Any:
        value: Any = self.manifest
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, kind):
            raise self._bundle._error(f"its manifest has no valid {'.'.join(keys)}")
        return value

    def _load_items(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        import json

        ids = np.load(io.BytesIO(self._bundle.read("items/ids.npy")), allow_pickle=False)
        metadata = json.loads(self._bundle.read("items/metadata.json"))
        count = self._field("items", kind=int)
        if (
            ids.dtype != np.int64
            or ids.shape != (count,)
            or not isinstance(metadata, list)
            or len(metadata) != count
            or not all(isinstance(item, dict) for item in metadata)
            or np.any(np.diff(ids) <= 0)
        ):
            raise self._bundle._error(f"its item list does not hold the {count} items it declares")
        return ids, metadata

    def _load_index(self, space: str) -> ann.AnnIndex:
        dim = self._field("model", "dims", space, kind=int)
        with tempfile.TemporaryDirectory(prefix="picsearch-searcher-") as folder:
            try:
                index = ann.load(self._bundle.extract(f"index/{space}", Path(folder)))
            except SearcherFileError:
                raise
            except PicsearchError as exc:
                raise self._bundle._error(f"its {space} index cannot be read ({exc})") from None
        if index.dim != dim or not np.isin(index.ids(), self._ids).all():
            raise self._bundle._error(f"its {space} index does not match its {dim}-d vectors")
        return index

    def _session(self, part: str):
        from .encoders.onnx_export import open_session

        name = "encoders/" + self._field("encoders", self._part, part, kind=str)
        return open_session(self._bundle.read(name), threads=self.options.threads)

    def _neighbours(self, vector: np.ndarray, k: int | None) -> SearchResult:
        k = self.options.max_results if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInput(f"k must be a whole number of at least 1, not {k!r}")
        scores, ids = self._index.search(vector[None].astype(np.float32), k)
        rows = np.searchsorted(self._ids, ids[0].clip(0))
        found = [
            NearestNeighbor(int(i), round(float(s), 6), self._metadata[r])
            for s, i, r in zip(scores[0], ids[0], rows, strict=True)
            if i >= 0
        ]
        return SearchResult(found)

    def __len__(self) -> int:
        return len(self._ids)

    def __enter__(self):
        return self

    def __exit__(self, *_: object) -> None:
        pass


class TextSearcher(_Searcher):
    """Find the items closest to a text."""

    _part = "text"
    _space = "joint"

    def _load_encoder(self) -> None:
        from tokenizers import Tokenizer

        self._session_text = self._session("onnx")
        self._text_inputs = [i.name for i in self._session_text.get_inputs()]
        if not set(self._text_inputs) <= {"input_ids", "attention_mask"}:
            raise self._bundle._error(f"its text encoder takes unknown inputs {self._text_inputs}")
        name = "encoders/" + self._field("encoders", "text", "tokenizer", kind=str)
        self._tokenizer = Tokenizer.from_str(self._bundle.read(name).decode("utf-8"))

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

    def search(self, text: str, *, k: int | None = None) -> SearchResult:
        return self._neighbours(self.embed(text), k)


class ImageSearcher(_Searcher):
    """Find the items closest to an example image (a path, a PIL image or an array)."""

    _part = "image"

    @property
    def _space(self) -> str:
        return "visual" if "visual" in self._outputs else "joint"

    def _load_encoder(self) -> None:
        self._outputs = self._field("encoders", "image", "outputs", kind=list)
        self._preprocess = self._field("encoders", "image", "preprocess")
        self._session_image = self._session("onnx")

    def embed(self, image: ImageInput) -> np.ndarray:
        pixels = preprocess(self._load(image), self._preprocess)
        outputs = self._session_image.run([self._space], {"pixels": pixels[None]})
        return outputs[0][0]

    def _load(self, image: ImageInput) -> Image.Image:
        if isinstance(image, np.ndarray):
            image = _from_array(image)
        spec = self._preprocess
        short = spec.get("resize_short") or min(spec.get("resize") or spec.get("crop") or [256])
        try:
            return load_query_image(
                image, short_side=int(short), max_pixels=self.options.max_pixels
            )
        except Unusable as exc:
            raise InvalidInput(str(exc)) from None

    def search(self, image: ImageInput, *, k: int | None = None) -> SearchResult:
        return self._neighbours(self.embed(image), k)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InvalidInput(
            f"an image array must be (h, w), (h, w, 3) or (h, w, 4), not {array.shape}"
        )
    if array.dtype != np.uint8:
        raise InvalidInput(f"an image array must hold uint8 pixels, not {array.dtype}")
    return Image.fromarray(array.squeeze(2) if array.ndim == 3 and array.shape[2] == 1 else array)


_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def preprocess(image: Image.Image, spec: dict[str, Any]) -> np.ndarray:
    """An RGB image to the (3, H, W) float32 array an exported image graph takes."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    resample = _RESAMPLE[spec.get("resample", "bilinear")]
    crop = spec.get("crop")
    if spec.get("resize"):
        height, width = spec["resize"]
        image = image.resize((width, height), resample)
    elif spec.get("resize_short"):
        image = _resize_short(image, spec, resample)
    if crop:
        crop_h, crop_w = crop
        if spec.get("pad_to_crop") and (image.width < crop_w or image.height < crop_h):
            canvas = Image.new("RGB", (max(image.width, crop_w), max(image.height, crop_h)))
            canvas.paste(
                image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2)
            )
            image = canvas
        left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels * np.float32(spec["scale"]) + np.float32(spec["shift"])
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _resize_short(image: Image.Image, spec: dict[str, Any], resample) -> Image.Image:
    """Short side to ``resize_short``: rounded and never below the crop (picsearch's
    encoders), or with ``rounding="floor"`` as Hugging Face image processors do."""
    short = int(spec["resize_short"])
    width, height = image.size
    if spec.get("rounding") == "floor":
        if width <= height:
            size = (short, int(short * height / width))
        else:
            size = (int(short * width / height), short)
        return image if size == image.size else image.resize(size, resample)
    if min(width, height) == short:
        return image
    scale = short / min(width, height)
    low = max(spec.get("crop") or [1])
    return image.resize((max(low, round(width * scale)), max(low, round(height * scale))), resample)
