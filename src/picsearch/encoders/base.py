"""The one small interface every encoder family implements, and the optional abilities.

An ability is a runtime-checkable Protocol: callers ask ``isinstance(encoder,
PreparesImages)`` rather than probing for a method by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

__all__ = [
    "Encoder",
    "ImageEmbeddings",
    "PreparesImages",
    "ExportsQueryModel",
    "OnnxGraphBase",
    "ProjectsBase",
    "normalize",
    "query_model_description",
]


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


@runtime_checkable
class PreparesImages(Protocol):
    """Loads its image model ahead of use, so indexing can time itself without a first-use
    export."""

    def prepare_images(self) -> None: ...


@runtime_checkable
class ExportsQueryModel(Protocol):
    """Can write its query side as self-contained ONNX graphs for a one-file searcher."""

    def export_query_model(self, folder: Path) -> dict[str, Any]:
        """Write text.onnx, image.onnx and tokenizer.json into ``folder``; return
        :func:`query_model_description` of them."""
        ...


@runtime_checkable
class OnnxGraphBase(Protocol):
    """A base encoder whose cached ONNX graphs a trained dual encoder builds on (the default)."""

    @property
    def text_onnx_path(self) -> Path: ...

    @property
    def image_onnx_path(self) -> Path: ...

    def load_text(self) -> tuple[Any, Any]:
        """The configured tokenizer and the text session (exporting the graph on first use)."""
        ...

    def load_image(self) -> Any:
        """The image session (exporting the graph on first use)."""
        ...

    def image_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image graph's raw outputs: (pooled features, class logits)."""
        ...


@runtime_checkable
class ProjectsBase(Protocol):
    """Trained heads over a base encoder: base vectors in, joint vectors out."""

    base: Encoder
    #: Which base output feeds the image head ("visual" or "joint").
    base_kind: str

    def text_from_base(self, features: np.ndarray) -> np.ndarray: ...

    def joint_from_base(self, features: np.ndarray) -> np.ndarray: ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def query_model_description(outputs: list[str], preprocess: dict[str, Any]) -> dict[str, Any]:
    """What ``export_query_model`` returns: the graphs and tokenizer it wrote, the image
    graph's ``outputs`` and how images are ``preprocess``-ed for it."""
    return {
        "text": {"onnx": "text.onnx", "tokenizer": "tokenizer.json"},
        "image": {"onnx": "image.onnx", "outputs": outputs, "preprocess": preprocess},
    }
