"""CLIP and SigLIP models from a local Hugging Face folder (``--model clip:/path/to/dir``).

The folder holds what ``save_pretrained`` writes: ``config.json``, the weights
(``model.safetensors`` or ``pytorch_model.bin``, possibly sharded), the
tokenizer files and ``preprocessor_config.json``. Nothing is downloaded.

The text and image towers are exported to ONNX once (into ``cache_dir()``,
checked against PyTorch) and run in ONNX Runtime; if an export fails its
parity check the tower runs in PyTorch instead (``runtime`` says which).
Images are preprocessed here with numpy/Pillow, following the folder's image
processor settings (resize, centre crop, rescale, normalise).
CLIP image vectors also serve image-to-image search, so ``visual_dim`` is None.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput, require
from . import onnx_export
from .base import ImageEmbeddings, normalize

__all__ = ["ClipEncoder", "SUPPORTED_MODEL_TYPES"]

log = logging.getLogger(__name__)

#: config.json "model_type" values this encoder loads.
SUPPORTED_MODEL_TYPES = ("clip", "siglip")
_EXPORT_VERSION = "v1"
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_TEXT_BATCH = 64
_EXPECTED = (
    "a Hugging Face CLIP or SigLIP model folder (config.json with model_type "
    "'clip' or 'siglip', model.safetensors or pytorch_model.bin, tokenizer files, "
    "preprocessor_config.json), as save_pretrained() writes it"
)


def _transformers():
    return require("transformers", package="transformers", extra="clip", purpose="CLIP models")


def _sampled_digest(paths: list[Path]) -> str:
    """A short digest of small files whole and of large files' size, head and tail (fast)."""
    digest = hashlib.blake2b(digest_size=5)
    for path in paths:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as handle:
            if size <= 4 << 20:
                digest.update(handle.read())
            else:
                digest.update(handle.read(1 << 20))
                handle.seek(size - (1 << 20))
                digest.update(handle.read())
    return digest.hexdigest()


class _ImageSettings:
    """The image processor settings that preprocess() reproduces."""

    def __init__(self, config: dict[str, Any], model_type: str, image_size: int) -> None:
        size = config.get("size") or {}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = config.get("crop_size") or {}
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        self.do_resize = bool(config.get("do_resize", True))
        self.do_center_crop = bool(config.get("do_center_crop", model_type == "clip"))
        self.do_rescale = bool(config.get("do_rescale", True))
        self.do_normalize = bool(config.get("do_normalize", True))
        self.rescale_factor = float(config.get("rescale_factor", 1 / 255))
        if "shortest_edge" in size:
            self.shortest_edge: int | None = int(size["shortest_edge"])
            self.resize_hw: tuple[int, int] | None = None
        elif "height" in size and "width" in size:
            self.shortest_edge = None
            self.resize_hw = (int(size["height"]), int(size["width"]))
        else:
            self.shortest_edge = image_size if model_type == "clip" else None
            self.resize_hw = None if model_type == "clip" else (image_size, image_size)
        self.crop_hw = (int(crop.get("height", image_size)), int(crop.get("width", image_size)))
        default_mean, default_std = (
            (_CLIP_MEAN, _CLIP_STD) if model_type == "clip" else ((0.5,) * 3, (0.5,) * 3)
        )
        mean = np.asarray(config.get("image_mean", default_mean), dtype=np.float32)
        std = np.asarray(config.get("image_std", default_std), dtype=np.float32)
        # x * rescale then (x - mean) / std, folded into one multiply-add per channel.
        rescale = self.rescale_factor if self.do_rescale else 1.0
        if self.do_normalize:
            self.scale = (rescale / std).reshape(1, 1, 3).astype(np.float32)
            self.shift = (-mean / std).reshape(1, 1, 3).astype(np.float32)
        else:
            self.scale = np.full((1, 1, 3), rescale, np.float32)
            self.shift = np.zeros((1, 1, 3), np.float32)
        self.resample = Image.Resampling(int(config.get("resample", Image.Resampling.BICUBIC)))
        if self.do_center_crop:
            self.output_hw = self.crop_hw
        elif self.resize_hw:
            self.output_hw = self.resize_hw
        else:
            self.output_hw = (image_size, image_size)

    @property
    def decode_size(self) -> int:
        if self.shortest_edge:
            return self.shortest_edge
        if self.resize_hw:
            return min(self.resize_hw)
        return min(self.crop_hw)


class ClipEncoder:
    """A CLIP-family dual encoder from a local folder; ONNX Runtime where the export checks out."""

    visual_dim: int | None = None

    def __init__(self, path: str | os.PathLike[str], *, runtime: str = "auto", threads=None):
        if runtime not in ("auto", "onnx", "torch"):
            raise ValueError(f"runtime must be 'auto', 'onnx' or 'torch', not {runtime!r}")
        if not str(path).strip():
            raise InvalidInput(
                f"the clip model needs a folder: use clip:/path/to/folder ({_EXPECTED})"
            )
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InvalidInput(f"{folder}: no such folder; expected {_EXPECTED}")
        folder = folder.resolve()
        config_file = folder / "config.json"
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"{folder}: no config.json; expected {_EXPECTED}") from None
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{config_file}: unreadable ({exc}); expected {_EXPECTED}") from None
        model_type = config.get("model_type") if isinstance(config, dict) else None
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise InvalidInput(
                f"{folder}: config.json says model_type {model_type!r}, not a CLIP-like model; "
                f"expected {_EXPECTED}"
            )
        weights = [folder / name for name in _WEIGHT_FILES if (folder / name).is_file()]
        if not weights:
            raise InvalidInput(f"{folder}: no model weights found; expected {_EXPECTED}")
        if weights[0].name.endswith(".index.json"):
            try:
                index = json.loads(weights[0].read_text(encoding="utf-8"))
                shards = sorted(set(index["weight_map"].values()))
            except (OSError, ValueError, KeyError) as exc:
                raise InvalidInput(f"{weights[0]}: unreadable shard index ({exc})") from None
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise InvalidInput(f"{folder}: weight shards missing: {', '.join(missing)}")
            weights = weights[:1] + [folder / s for s in shards]
        tokenizer_files = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")
        if not any((folder / name).is_file() for name in tokenizer_files):
            raise InvalidInput(f"{folder}: no tokenizer files; expected {_EXPECTED}")

        self.folder = folder
        self.model_type = model_type
        self.config = config
        text_config = config.get("text_config") or {}
        vision_config = config.get("vision_config") or {}
        if model_type == "clip":
            self.dim = int(config.get("projection_dim", 512))
        else:
            self.dim = int(
                text_config.get("projection_size") or text_config.get("hidden_size", 768)
            )
        self.max_tokens = int(
            text_config.get("max_position_embeddings", 77 if model_type == "clip" else 64)
        )
        image_size = int(vision_config.get("image_size", 224))
        processor_file = folder / "preprocessor_config.json"
        if processor_file.is_file():
            try:
                processor = json.loads(processor_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"{processor_file}: unreadable ({exc})") from None
            processor = processor.get("image_processor", processor)  # processor_config layout
        else:
            log.warning("%s: no preprocessor_config.json; using %s defaults", folder, model_type)
            processor = {}
        self.image_settings = _ImageSettings(processor, model_type, image_size)
        self.decode_size = self.image_settings.decode_size
        self.model_id = f"clip:{folder.name}-{_sampled_digest([config_file, *weights])}"
        self.runtime_choice = runtime
        self.threads = threads
        #: "onnx" or "torch" per tower, once loaded.
        self.runtime: dict[str, str] = {}
        self.export_records: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._tokenizer = None
        self._model = None
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
                        str(self.folder), local_files_only=True, attn_implementation="eager"
                    ).eval()
                except Exception as exc:
                    raise InvalidInput(
                        f"{self.folder}: cannot load the model ({exc}); expected {_EXPECTED}"
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
                        f"{self.folder}: cannot load the tokenizer ({exc}); expected {_EXPECTED}"
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
        s = self.image_settings
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if s.do_resize:
            if s.shortest_edge is not None:
                short, long = (width, height) if width <= height else (height, width)
                new_short, new_long = s.shortest_edge, int(s.shortest_edge * long / short)
                size = (new_short, new_long) if width <= height else (new_long, new_short)
            else:
                size = (s.resize_hw[1], s.resize_hw[0])
            if size != (width, height):
                image = image.resize(size, s.resample)
            width, height = size
        if s.do_center_crop:
            crop_h, crop_w = s.crop_hw
            if width < crop_w or height < crop_h:  # pad like the processor: zeros around
                canvas = Image.new("RGB", (max(width, crop_w), max(height, crop_h)))
                canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
                image, width, height = canvas, canvas.width, canvas.height
            top = (height - crop_h) // 2
            left = (width - crop_w) // 2
            image = image.crop((left, top, left + crop_w, top + crop_h))
        pixels = np.asarray(image, dtype=np.float32) * s.scale + s.shift
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

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

    def export_query_model(self, folder: Path) -> dict:
        """Self-contained query graphs for a one-file searcher (see ``query_graphs``)."""
        from . import query_graphs as graphs

        for kind, inputs, output in (
            ("text", {}, "embedding"),
            ("image", {"pixel_values": "pixels"}, "joint"),
        ):
            if self._tower(kind)[0] != "onnx":
                raise InvalidInput(f"{self.folder}: the {kind} tower has no ONNX export to ship")
            model = graphs.load(onnx_export.onnx_path(self.model_id, kind, _EXPORT_VERSION))
            for old, new in inputs.items():
                graphs.rename_value(model, old, new)
            nodes, inits = graphs.l2_normalize_nodes("features", output)
            graphs.save(
                graphs.append(model, nodes, inits, {output: self.dim}), folder / f"{kind}.onnx"
            )
        self._query_tokenizer().save(str(folder / "tokenizer.json"))
        return {
            "text": {"onnx": "text.onnx", "tokenizer": "tokenizer.json"},
            "image": {
                "onnx": "image.onnx",
                "outputs": ["joint"],
                "preprocess": self._preprocess_spec(),
            },
        }

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

    def _preprocess_spec(self) -> dict:
        s = self.image_settings
        spec: dict = {
            "resample": {Image.Resampling.BICUBIC: "bicubic"}.get(s.resample, "bilinear"),
            "scale": s.scale.reshape(3).tolist(),
            "shift": s.shift.reshape(3).tolist(),
        }
        if s.do_resize and s.shortest_edge is not None:
            spec.update(resize_short=s.shortest_edge, rounding="floor", pad_to_crop=True)
        elif s.do_resize:
            spec["resize"] = list(s.resize_hw)
        if s.do_center_crop:
            spec["crop"] = list(s.crop_hw)
        return spec


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

        class Text(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask=None):
                return features(
                    self.inner.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
                )

        class Vision(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, pixel_values):
                return features(self.inner.get_image_features(pixel_values=pixel_values))

        return (Text if kind == "text" else Vision)(model).eval()
