"""A dual encoder trained by ``picsearch train`` (``--model dual:/path/to/folder``).

The folder holds projection heads trained on top of a frozen base encoder (the
built-in default: MiniLM text features, EfficientNet-Lite0 pooled image
features). Queries and images run through the base encoder's ONNX graphs and
then the heads' ONNX graphs, in ONNX Runtime with numpy: torch is not needed.

Spaces: ``joint`` is the heads' output (``dim``, 256 by default), shared by
text and images. ``visual`` is the base encoder's L2-normalised pooled image
features, unchanged, so image-to-image search stays exactly as good as with
the default model.

When training also tuned MiniLM's last layers (``unfreeze_text``), the folder
holds the fine-tuned text base as ``text_base.onnx``: text runs through the
base's tokenizer, that graph and the text head instead of the base encoder's
text graph. Image features still come from the frozen base.

``model_id`` is a digest of the trained weights (the tuned text layers
included) and the base model, so a library indexed with one trained model
refuses another.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput
from . import dual_format, effnet, graphs, minilm, onnx_export
from .base import Encoder, ImageEmbeddings, OnnxGraphBase, query_model_description
from .registry import load_encoder

__all__ = ["DualEncoder"]

_BATCH = 1024


class DualEncoder:
    """Trained projection heads over a frozen base encoder; ONNX Runtime at query time."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        if not str(path).strip():
            raise InvalidInput("the dual model needs a folder: use dual:/path/to/model")
        self.folder = Path(path).expanduser().resolve()
        self.config: dict[str, Any] = dual_format.read_config(self.folder)
        base = self.config["base"]
        self.base: Encoder = load_encoder(base["model"])
        if self.base.model_id != base["model_id"]:
            raise InvalidInput(
                f"{self.folder} was trained on base model {base['model_id']}, but "
                f"'{base['model']}' is now {self.base.model_id}: train it again"
            )
        #: Which base output feeds the image head ("visual" or "joint").
        self.base_kind: str = base["image_space"]
        self.dim = int(self.config["dim"])
        self.visual_dim: int | None = self.base.visual_dim if self.base_kind == "visual" else None
        self.decode_size = self.base.decode_size
        self.threads = threads
        weights = dual_format.load_weights(self.folder)
        self.model_id = f"dual-{_digest(weights, base['model_id'], self.config)}"
        self._files = {
            "text": self.folder / dual_format.TEXT_HEAD,
            "image": self.folder / dual_format.IMAGE_HEAD,
        }
        #: Whether text runs through this folder's fine-tuned text base.
        self.own_text_base = int(self.config.get("unfreeze_text", 0)) > 0
        if self.own_text_base:
            self._files["text_base"] = self.folder / dual_format.TEXT_BASE
        for name in self._files.values():
            if not name.is_file():
                raise InvalidInput(f"{name} is missing: train the model again to export it")
        self._sessions: dict[str, Any] = {}
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DualEncoder({str(self.folder)!r}, model_id={self.model_id!r})"

    def _session(self, side: str) -> Any:
        with self._lock:
            if side not in self._sessions:
                self._sessions[side] = onnx_export.open_session(
                    self._files[side], threads=self.threads
                )
            return self._sessions[side]

    # ----------------------------------------------------------------- heads

    def text_from_base(self, features: np.ndarray) -> np.ndarray:
        """Base text vectors (n, base dim) into the joint space (n, dim)."""
        return self._run("text", ["embedding"], features)[0]

    def joint_from_base(self, features: np.ndarray) -> np.ndarray:
        """Base image features into the joint space."""
        return self._run("image", ["joint"], features)[0]

    def _run(self, side: str, outputs: list[str], features: np.ndarray) -> list[np.ndarray]:
        features = np.ascontiguousarray(features, dtype=np.float32)
        if len(features) == 0:
            widths = {"visual": self.visual_dim or 0}
            return [np.zeros((0, widths.get(o, self.dim)), np.float32) for o in outputs]
        session = self._session(side)
        parts = [
            session.run(outputs, {"features": features[start : start + _BATCH]})
            for start in range(0, len(features), _BATCH)
        ]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(outputs))]

    # ----------------------------------------------------------------- Encoder

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings")
        if self.own_text_base:
            return self.text_from_base(self._tuned_base_texts([str(t) for t in texts]))
        return self.text_from_base(self.base.embed_texts(list(texts)))

    def _tuned_base_texts(self, texts: list[str]) -> np.ndarray:
        """Texts through the base tokenizer and this folder's fine-tuned text base graph."""
        width = int(self.config["base"]["text_dim"])
        if not texts:
            return np.zeros((0, width), np.float32)
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = minilm.minilm_tokenizer()
        session = self._session("text_base")
        return minilm.embed_texts_with(self._tokenizer, session, texts, width)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.base.preprocess(image)

    def prepare_images(self) -> None:
        if isinstance(self.base, OnnxGraphBase):
            self.base.load_image()
        self._session("image")

    def base_features(self, batch: np.ndarray) -> np.ndarray:
        """What the base encoder gives the image head for a preprocessed batch."""
        if isinstance(self.base, OnnxGraphBase) and self.base_kind == "visual":
            return self.base.image_outputs(batch)[0]  # raw pooled features: the head normalises
        embedded = self.base.embed_arrays(batch)
        features = embedded.visual if self.base_kind == "visual" else embedded.joint
        if features is None:
            raise InvalidInput(f"{self.folder}: the base model gives no visual vectors now")
        return features

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        joint, visual = self._run("image", ["joint", "visual"], self.base_features(batch))
        return ImageEmbeddings(joint=joint, visual=visual if self.visual_dim else None)

    def embed_images(self, images: list[Image.Image]) -> ImageEmbeddings:
        if not images:
            empty = np.zeros((0, self.dim), np.float32)
            visual = np.zeros((0, self.visual_dim), np.float32) if self.visual_dim else None
            return ImageEmbeddings(joint=empty, visual=visual)
        return self.embed_arrays(np.stack([self.preprocess(image) for image in images]))

    # ----------------------------------------------------------------- export

    def export_query_model(self, folder: Path) -> dict[str, Any]:
        """Write the query-side graphs into ``folder``; return their JSON-able description."""
        base = self.base
        if not isinstance(base, OnnxGraphBase):
            raise InvalidInput(f"{self.folder}: only models trained on the default base export")
        base.load_image()  # export the base graphs into the cache if needed
        if self.own_text_base:
            tokenizer, text_base = minilm.minilm_tokenizer(), self._files["text_base"]
        else:
            tokenizer, _ = base.load_text()  # truncation and padding already configured
            text_base = base.text_onnx_path
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        text = self._composed(text_base, "text", {"embedding": "features"}, ["embedding"])
        outputs = ["joint", "visual"] if self.visual_dim else ["joint"]
        image = self._composed(base.image_onnx_path, "image", {"features": "features"}, outputs)
        graphs.save(text, folder / "text.onnx")
        graphs.save(image, folder / "image.onnx")
        tokenizer.save(str(folder / "tokenizer.json"))
        return query_model_description(outputs, effnet.query_preprocess())

    def _composed(
        self, base_graph: Path, side: str, connect: dict[str, str], outputs: list[str]
    ) -> Any:
        """The base graph followed by this folder's ``side`` head, as one graph."""
        head = graphs.load(self._files[side])
        return graphs.compose(graphs.load(base_graph), head, connect=connect, outputs=outputs)


def _digest(weights: dict[str, np.ndarray], base_id: str, config: dict) -> str:
    """A short digest of the weights (by name), the base model and the head shape."""
    digest = hashlib.blake2b(digest_size=6)
    shape = {"base": base_id, "dim": config["dim"], "space": config["base"]["image_space"]}
    digest.update(json.dumps(shape, sort_keys=True).encode())
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name], dtype=np.float32)
        digest.update(name.encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
