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

from ..errors import InvalidInput, require
from . import onnx_export
from .base import ImageEmbeddings

__all__ = ["DualEncoder"]

_BATCH = 1024
_TEXT_BATCH = 64


class DualEncoder:
    """Trained projection heads over a frozen base encoder; ONNX Runtime at query time."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        from ..train import export

        if not str(path).strip():
            raise InvalidInput("the dual model needs a folder: use dual:/path/to/model")
        self.folder = Path(path).expanduser().resolve()
        self.config: dict[str, Any] = export.read_config(self.folder)
        from . import load_encoder

        base = self.config["base"]
        self.base = load_encoder(base["model"])
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
        weights = export.load_weights(self.folder)
        self.model_id = f"dual-{_digest(weights, base['model_id'], self.config)}"
        self._files = {
            "text": self.folder / export.TEXT_HEAD,
            "image": self.folder / export.IMAGE_HEAD,
        }
        #: Whether text runs through this folder's fine-tuned text base.
        self.own_text_base = int(self.config.get("unfreeze_text", 0)) > 0
        if self.own_text_base:
            self._files["text_base"] = self.folder / export.TEXT_BASE
        for name in self._files.values():
            if not name.is_file():
                raise InvalidInput(f"{name} is missing: train the model again to export it")
        self._sessions: dict[str, Any] = {}
        self._tokenizer = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DualEncoder({str(self.folder)!r}, model_id={self.model_id!r})"

    def _session(self, side: str):
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
        from .default import minilm_tokenizer

        out = np.zeros((len(texts), int(self.config["base"]["text_dim"])), np.float32)
        if not texts:
            return out
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = minilm_tokenizer()
        session = self._session("text_base")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding
        for start in range(0, len(order), _TEXT_BATCH):
            rows = order[start : start + _TEXT_BATCH]
            encodings = self._tokenizer.encode_batch([texts[i] for i in rows])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            }
            out[rows] = session.run(["embedding"], feed)[0]
        return out

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.base.preprocess(image)

    def prepare_images(self) -> None:
        image = getattr(self.base, "_image", None)
        if image is not None:
            image()
        self._session("image")

    def base_features(self, batch: np.ndarray) -> np.ndarray:
        """What the base encoder gives the image head for a preprocessed batch."""
        outputs = getattr(self.base, "image_outputs", None)
        if outputs is not None and self.base_kind == "visual":
            return outputs(batch)[0]  # raw pooled features: the head normalises them
        embedded = self.base.embed_arrays(batch)
        return embedded.visual if self.base_kind == "visual" else embedded.joint

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

    def export_query_model(self, folder: Path) -> dict:
        """Write the query-side graphs into ``folder``; return their JSON-able description."""
        from ..train.export import compose
        from .default import _SCALE, _SHIFT, CROP_SIZE, RESIZE_SIZE, minilm_tokenizer

        onnx = require("onnx", package="onnx", extra="default", purpose="exporting a searcher")
        base = self.base
        if not all(hasattr(base, a) for a in ("text_onnx_path", "image_onnx_path", "_text")):
            raise InvalidInput(f"{self.folder}: only models trained on the default base export")
        base._image()  # export the base graphs into the cache if needed
        if self.own_text_base:
            tokenizer, text_base = minilm_tokenizer(), self._files["text_base"]
        else:
            tokenizer, _ = base._text()  # truncation and padding already configured
            text_base = base.text_onnx_path
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        text = compose(
            onnx.load(str(text_base)),
            onnx.load(str(self._files["text"])),
            connect={"embedding": "features"},
            outputs=["embedding"],
        )
        outputs = ["joint", "visual"] if self.visual_dim else ["joint"]
        image = compose(
            onnx.load(str(base.image_onnx_path)),
            onnx.load(str(self._files["image"])),
            connect={"features": "features"},
            outputs=outputs,
        )
        onnx.save(text, str(folder / "text.onnx"))
        onnx.save(image, str(folder / "image.onnx"))
        tokenizer.save(str(folder / "tokenizer.json"))

        return {
            "text": {"onnx": "text.onnx", "tokenizer": "tokenizer.json"},
            "image": {
                "onnx": "image.onnx",
                "outputs": outputs,
                "preprocess": {
                    "resize_short": RESIZE_SIZE,
                    "resample": "bilinear",
                    "crop": [CROP_SIZE, CROP_SIZE],
                    "scale": [float(_SCALE)] * 3,
                    "shift": [float(_SHIFT)] * 3,
                },
            },
        }


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
