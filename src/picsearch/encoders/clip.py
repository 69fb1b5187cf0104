"""CLIP and SigLIP models from a local Hugging Face folder (``--model clip:/path/to/dir``).

The folder holds what ``save_pretrained`` writes (``clip_folder`` checks it).
Nothing is downloaded.

The text and image towers are exported to ONNX once (into ``cache_dir()``,
checked against PyTorch) and run in ONNX Runtime; if an export fails its
parity check the tower runs in PyTorch instead (``runtime`` says which).
Images are preprocessed with numpy/Pillow, following the folder's image
processor settings (``clip_images``).
CLIP image vectors also serve image-to-image search, so ``visual_dim`` is None.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput, require
from . import graphs, onnx_export
from .base import ImageEmbeddings, normalize, query_model_description
from .clip_folder import EXPECTED, SUPPORTED_MODEL_TYPES, read_clip_folder
from .clip_images import ImageSettings
from .model_checks import pickle_allowed

__all__ = ["ClipEncoder", "SUPPORTED_MODEL_TYPES"]

log = logging.getLogger(__name__)

_EXPORT_VERSION = "v1"
_TEXT_BATCH = 64


def _transformers():
    return require("transformers", package="transformers", extra="clip", purpose="CLIP models")


class ClipEncoder:
    """A CLIP-family dual encoder from a local folder; ONNX Runtime where the export checks out."""

    visual_dim: int | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        runtime: str = "auto",
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        if runtime not in ("auto", "onnx", "torch"):
            raise ValueError(f"runtime must be 'auto', 'onnx' or 'torch', not {runtime!r}")
        found = read_clip_folder(path, name=name)
        self.folder = found.path
        self.model_type = found.model_type
        self.config = found.config
        self.dim = found.dim
        self.max_tokens = found.max_tokens
        self.image_settings = ImageSettings(found.processor, found.model_type, found.image_size)
        self.decode_size = self.image_settings.decode_size
        self.model_id = found.model_id
        self.runtime_choice = runtime
        self.threads = threads
        #: "onnx" or "torch" per tower, once loaded.
        self.runtime: dict[str, str] = {}
        self.export_records: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._tokenizer: Any = None
        self._model: Any = None
        self._sessions: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ClipEncoder({str(self.folder)!r}, model_id={self.model_id!r})"

    # --------------------------------------------------------------- loading

    def _torch_model(self):
        """The PyTorch model (eager attention, so that it exports), loaded once."""
        with self._lock:
            if self._model is None:
                transformers = _transformers()
                cls = (
                    transformers.CLIPModel
                    if self.model_type == "clip"
                    else transformers.SiglipModel
                )
                progress = transformers.utils.logging.is_progress_bar_enabled()
                transformers.utils.logging.disable_progress_bar()  # stderr is the CLI's
                try:
                    self._model = cls.from_pretrained(
                        str(self.folder),
                        local_files_only=True,
                        attn_implementation="eager",
                        use_safetensors=not pickle_allowed(),  # never a pickle unless allowed
                    ).eval()
                except Exception as exc:
                    raise InvalidInput(
                        f"{self.folder}: cannot load the model ({exc}); expected {EXPECTED}"
                    ) from exc
                finally:
                    if progress:
                        transformers.utils.logging.enable_progress_bar()
            return self._model

    def _get_tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                transformers = _transformers()
                try:
                    self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                        str(self.folder), local_files_only=True
                    )
                except Exception as exc:
                    raise InvalidInput(
                        f"{self.folder}: cannot load the tokenizer ({exc}); expected {EXPECTED}"
                    ) from exc
            return self._tokenizer

    def _text_inputs(self) -> list[str]:
        # SigLIP was trained on max_length padding without an attention mask.
        return ["input_ids"] if self.model_type == "siglip" else ["input_ids", "attention_mask"]

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        tokenizer = self._get_tokenizer()
        padding = "max_length" if self.model_type == "siglip" else True
        encoded = tokenizer(
            list(texts),
            padding=padding,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="np",
        )
        return {name: np.asarray(encoded[name], dtype=np.int64) for name in self._text_inputs()}

    def _tower(self, kind: str):
        """('onnx', session) or ('torch', module) for the "text" or "image" tower."""
        with self._lock:
            if kind in self._sessions:
                return self.runtime[kind], self._sessions[kind]
            runner = None
            if self.runtime_choice in ("auto", "onnx"):
                path = onnx_export.onnx_path(self.model_id, kind, _EXPORT_VERSION)
                try:
                    session, record = onnx_export.cached_session(
                        path, lambda: self._export_spec(kind), threads=self.threads
                    )
                    runner = ("onnx", session)
                    if record:
                        self.export_records[kind] = record
                except onnx_export.ExportError as exc:
                    if self.runtime_choice == "onnx":
                        raise
                    log.warning("running the %s tower in PyTorch: %s", kind, exc)
            if runner is None:
                runner = ("torch", _TowerModule.build(self._torch_model(), kind))
            self.runtime[kind], self._sessions[kind] = runner
            return runner

    def _export_spec(self, kind: str) -> onnx_export.ExportSpec:
        module = _TowerModule.build(self._torch_model(), kind)
        if kind == "text":
            feeds = [
                self.tokenize(["a photo of a cat", "two dogs playing in the snow", "x"]),
                self.tokenize(["a longer caption, with punctuation, than the traced example is"]),
            ]
            names = self._text_inputs()
            axes = {name: {0: "batch", 1: "tokens"} for name in names}
        else:
            height, width = self.image_settings.output_hw
            rng = np.random.default_rng(0)
            feeds = [
                {"pixel_values": rng.standard_normal((2, 3, height, width), dtype=np.float32)},
                {"pixel_values": rng.uniform(-2, 2, (3, 3, height, width)).astype(np.float32)},
            ]
            names = ["pixel_values"]
            axes = {"pixel_values": {0: "batch"}}
        axes["features"] = {0: "batch"}
        return onnx_export.ExportSpec(
            module=module,
            input_names=names,
            output_names=["features"],
            parity_inputs=feeds,
            dynamic_axes=axes,
            info={"source": str(self.folder), "model_type": self.model_type},
        )

    def _run(self, kind: str, feed: dict[str, np.ndarray]) -> np.ndarray:
        runtime, runner = self._tower(kind)
        if runtime == "onnx":
            return runner.run(["features"], feed)[0]
        torch = require("torch", package="torch", extra="clip", purpose="CLIP models")
        names = self._text_inputs() if kind == "text" else ["pixel_values"]
        with torch.inference_mode():
            return runner(*(torch.from_numpy(feed[name]) for name in names)).float().numpy()

    # --------------------------------------------------------------- encoder

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), _TEXT_BATCH):
            chunk = [str(t) for t in texts[start : start + _TEXT_BATCH]]
            out[start : start + len(chunk)] = self._run("text", self.tokenize(chunk))
        return normalize(out)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One image to (3, H, W) float32 as the folder's image processor would make it."""
        return self.image_settings.preprocess(image)

    def prepare_images(self) -> None:
        """Load what embed_arrays() needs (exporting it on first use)."""
        self._tower("image")

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        expected = (3, *self.image_settings.output_hw)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(
                f"expected a (n, {expected}) batch from preprocess(), got {batch.shape}"
            )
        if len(batch) == 0:
            return ImageEmbeddings(joint=np.zeros((0, self.dim), np.float32))
        return ImageEmbeddings(joint=normalize(self._run("image", {"pixel_values": batch})))

    def embed_images(self, images: list[Image.Image]) -> ImageEmbeddings:
        if not images:
            return self.embed_arrays(np.zeros((0, 3, *self.image_settings.output_hw), np.float32))
        return self.embed_arrays(np.stack([self.preprocess(image) for image in images]))

    # ----------------------------------------------------------------- export

    def export_query_model(self, folder: Path) -> dict[str, Any]:
        """Self-contained query graphs for a one-file searcher (see ``graphs``)."""
        for kind, inputs, output in (
            ("text", {}, "embedding"),
            ("image", {"pixel_values": "pixels"}, "joint"),
        ):
            if self._tower(kind)[0] != "onnx":
                raise InvalidInput(f"{self.folder}: the {kind} tower has no ONNX export to ship")
            model = graphs.load(onnx_export.onnx_path(self.model_id, kind, _EXPORT_VERSION))
            for old, new in inputs.items():
                graphs.rename_value(model, old, new)
            finish = graphs.Graph("query")
            finish.normalize("features", output)
            graphs.save(finish.append_to(model, {output: self.dim}), folder / f"{kind}.onnx")
        self._query_tokenizer().save(str(folder / "tokenizer.json"))
        return query_model_description(["joint"], self.image_settings.manifest())

    def _query_tokenizer(self):
        """The folder's fast tokenizer with tokenize()'s padding and truncation built in."""
        hf = self._get_tokenizer()
        if not getattr(hf, "is_fast", False):
            raise InvalidInput(f"{self.folder}: a searcher needs a fast tokenizer (tokenizer.json)")
        tokenizer = copy.deepcopy(hf.backend_tokenizer)
        tokenizer.enable_truncation(max_length=self.max_tokens)
        fixed = self.max_tokens if self.model_type == "siglip" else None
        tokenizer.enable_padding(pad_id=hf.pad_token_id or 0, pad_token=hf.pad_token, length=fixed)
        return tokenizer


class _TowerModule:
    """Wraps get_text_features / get_image_features as a module returning a plain tensor."""

    @staticmethod
    def build(model, kind: str):
        torch = require("torch", package="torch", extra="clip", purpose="CLIP models")

        def features(output):
            # transformers 5.x returns an output object whose pooler_output is the embedding.
            if isinstance(output, torch.Tensor):
                return output
            pooled = getattr(output, "pooler_output", None)
            return pooled if pooled is not None else output[1]

        module: Any = torch.nn.Module  # a variable: torch is imported here, not at the top

        class Text(module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask=None):
                return features(
                    self.inner.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
                )

        class Vision(module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, pixel_values):
                return features(self.inner.get_image_features(pixel_values=pixel_values))

        return (Text if kind == "text" else Vision)(model).eval()
