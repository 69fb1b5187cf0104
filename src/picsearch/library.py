"""A photo library: catalog + encoder + vector search, the object behind picsearch.open()."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .catalog import Catalog, Row
from .encoders import Encoder, load_encoder
from .errors import InvalidInput
from .images import DEFAULT_MAX_PIXELS, Unusable, load_query_image
from .ingest import IndexSummary, index_paths
from .paths import default_db_path

__all__ = ["Library", "Hit", "LibraryInfo", "open"]

ImageQuery = str | os.PathLike[str] | Image.Image


@dataclass(frozen=True)
class Hit:
    """One search result. ``score`` is a cosine similarity: higher is closer."""

    rank: int
    id: int
    path: str
    score: float
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Library:
    """Index folders of photos and search them by text, by example image, or both."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, model: str | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._catalog = Catalog(self.path, create=create)
        stored = self._catalog.model_spec
        self.model = model or stored or "default"
        self._encoder: Encoder | None = None
        self._cache: tuple[int, tuple[np.ndarray, ...]] | None = None
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
    ) -> IndexSummary:
        """Add new and changed images under ``paths``, drop the deleted ones."""
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        _check_positive(batch_size=batch_size, max_pixels=max_pixels)
        return index_paths(
            self._catalog, self.encoder, paths, max_pixels=max_pixels,
            batch_size=batch_size, workers=workers, progress=progress,
        )

    # -- search ------------------------------------------------------------------
    def search(
        self,
        text: str | None = None,
        *,
        image: ImageQuery | None = None,
        k: int = 10,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> list[Hit]:
        """The ``k`` closest images to a text, an example image, or both (scores averaged)."""
        _check_positive(k=k)
        if text is not None and not text.strip():
            raise InvalidInput("the text query is empty: describe what to find")
        if text is None and image is None:
            raise InvalidInput("nothing to search for: give a text query or an image")
        scores = self._scores(text, image, max_pixels)
        if scores.size == 0:
            return []
        ids = self._vectors()[0]
        top = _top_k(scores, k)
        rows = self._catalog.rows(int(ids[i]) for i in top)
        return [_hit(rank, rows[int(ids[i])], float(scores[i])) for rank, i in enumerate(top, 1)]

    def _scores(self, text: str | None, image: ImageQuery | None, max_pixels: int) -> np.ndarray:
        _, joint, visual = self._vectors()
        parts = []
        if text is not None:
            parts.append(joint @ self.encoder.embed_texts([text])[0])
        if image is not None:
            query = self._embed_query_image(image, max_pixels)
            if visual is not None and query.visual is not None:
                parts.append(visual @ query.visual[0])
            else:
                parts.append(joint @ query.joint[0])
        return np.mean(parts, axis=0)

    def _embed_query_image(self, image: ImageQuery, max_pixels: int):
        try:
            picture = load_query_image(
                image, short_side=self.encoder.decode_size, max_pixels=max_pixels
            )
        except Unusable as exc:
            raise InvalidInput(str(exc)) from None
        return self.encoder.embed_images([picture])

    def _vectors(self) -> tuple[np.ndarray, ...]:
        generation = self._catalog.generation
        if self._cache is None or self._cache[0] != generation:
            encoder = self.encoder
            self._cache = (generation, self._catalog.vectors(encoder.dim, encoder.visual_dim))
        return self._cache[1]

    # -- the rest ---------------------------------------------------------------
    def info(self) -> LibraryInfo:
        catalog = self._catalog
        dims = json.loads(catalog.get_meta("dims") or "{}")
        return LibraryInfo(
            path=str(self.path),
            items=catalog.count(),
            model=catalog.model_spec,
            model_id=catalog.get_meta("model_id"),
            dims=dims,
            schema_version=int(catalog.get_meta("schema_version") or 0),
            size_bytes=catalog.size_on_disk(),
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
    path: str | os.PathLike[str] | None = None, *, model: str | None = None,
    create: bool = True,
) -> Library:
    """Open the library at ``path`` (the default location if None), creating it if missing."""
    return Library(path, model=model, create=create)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a whole number of at least 1, not {value!r}")


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _hit(rank: int, row: Row, score: float) -> Hit:
    metadata = {
        "width": row.width, "height": row.height, "size": row.size,
        "mtime": row.mtime_ns / 1e9, **row.metadata,
    }
    return Hit(rank=rank, id=row.id, path=row.path, score=round(score, 6), metadata=metadata)
