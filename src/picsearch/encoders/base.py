"""The one small interface every encoder family implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

__all__ = ["Encoder", "ImageEmbeddings", "normalize"]


@dataclass(frozen=True)
class ImageEmbeddings:
    """Vectors for a batch of images, each row L2-normalised.

    ``joint`` lives in the shared text/image space (compared with text queries).
    ``visual`` is an optional second, image-only space used for image-to-image
    search where it beats the joint vector (None when the encoder has none).
    """

    joint: np.ndarray
    visual: np.ndarray | None = None


@runtime_checkable
class Encoder(Protocol):
    """A dual encoder: texts and images into one L2-normalised space."""

    #: Identifies the weights; stored with every library and checked on open.
    model_id: str
    #: Dimension of the joint text/image space.
    dim: int
    #: Dimension of the image-only space, or None.
    visual_dim: int | None
    #: Short side, in pixels, that images are decoded to before preprocess().
    #: The ingest pipeline uses it for reduced-size JPEG decoding (draft mode).
    decode_size: int

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One RGB image to the float32 array embed_arrays() takes (thread-safe)."""
        ...

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        """A stacked batch of preprocess() outputs to image embeddings."""
        ...

    def embed_images(self, images: list[Image.Image]) -> ImageEmbeddings:
        """Convenience: preprocess and embed a list of RGB images."""
        ...

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Texts to an (n, dim) float32 array of L2-normalised rows."""
        ...

    # Optional: ``prepare_images()`` loads the image model ahead of use, so that
    # indexing can time itself without a first-use export.


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
