"""An Immich CLIP model folder, checked before anything heavy is loaded.

Immich publishes its CLIP-family models (OpenCLIP, SigLIP and the multilingual
M-CLIP and XLM-R ones) as ONNX files in this layout::

    config.json                   OpenCLIP's model config: embed_dim, vision_cfg, text_cfg
    visual/model.onnx             image tower: input "image" (n, 3, S, S) -> embedding
    visual/preprocess_cfg.json    size, mean, std, interpolation, resize_mode
    textual/model.onnx            text tower: input "text" (OpenCLIP, SigLIP), or
                                  "input_ids" and "attention_mask" (M-CLIP) -> embedding
    textual/tokenizer.json        the tokenizer (Hugging Face tokenizers)
    textual/tokenizer_config.json its pad_token

Images are resized as Immich does: ``shortest`` (short side to S, then a centre
crop) or ``squash`` (straight to S x S); texts are cleaned as Immich cleans them
(whitespace collapsed; lower case without punctuation where ``text_cfg``'s
``tokenizer_kwargs`` say ``clean: canonicalize``, as SigLIP's do) and padded to
``text_cfg.context_length``.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput
from .model_checks import read_json

__all__ = [
    "IMMICH_EXPECTED",
    "ImmichFolder",
    "ImmichImages",
    "is_immich_folder",
    "read_immich_folder",
    "clean_text",
]

#: What a folder must hold, for messages.
IMMICH_EXPECTED = (
    "an Immich CLIP model folder (config.json, visual/model.onnx, visual/preprocess_cfg.json, "
    "textual/model.onnx, textual/tokenizer.json, textual/tokenizer_config.json)"
)
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_RESIZE_MODES = ("shortest", "squash")
_RESAMPLING = {r.name.lower(): r for r in Image.Resampling}


def is_immich_folder(folder: Path) -> bool:
    """Whether ``folder`` is laid out as Immich's (a visual/ or textual/ part)."""
    return (folder / "visual").is_dir() or (folder / "textual").is_dir()


def clean_text(text: str, *, canonicalize: bool) -> str:
    """A query as Immich cleans it before tokenizing."""
    text = " ".join(text.split())
    return text.translate(_PUNCTUATION).lower() if canonicalize else text


class ImmichImages:
    """``visual/preprocess_cfg.json``'s steps, reproduced with numpy and Pillow."""

    def __init__(self, config: dict[str, Any], source: Path) -> None:
        size = config.get("size")
        size = size[0] if isinstance(size, list) and size else size
        if not isinstance(size, int) or size <= 0:
            raise InvalidInput(f"{source}: size {size!r} is not a positive number of pixels")
        self.size = size
        self.resize_mode = config.get("resize_mode", "shortest")  # open_clip's old default
        if self.resize_mode not in _RESIZE_MODES:
            raise InvalidInput(
                f"{source}: resize_mode {self.resize_mode!r} is not one of {_RESIZE_MODES}"
            )
        name = str(config.get("interpolation", "bicubic")).lower()
        if name not in _RESAMPLING:
            raise InvalidInput(
                f"{source}: interpolation {name!r} is not one of {list(_RESAMPLING)}"
            )
        self.resample = _RESAMPLING[name]
        mean, std = (_three(config, key, source) for key in ("mean", "std"))
        # (x / 255 - mean) / std, folded into one multiply-add per channel.
        self.scale = (1.0 / (255.0 * std)).reshape(1, 1, 3).astype(np.float32)
        self.shift = (-mean / std).reshape(1, 1, 3).astype(np.float32)

    @property
    def output_hw(self) -> tuple[int, int]:
        return (self.size, self.size)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One image to (3, S, S) float32, as Immich's visual encoder makes it."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.resize_mode == "squash":
            image = image.resize((self.size, self.size), resample=self.resample)
        else:
            image = self._centre_crop(self._short_side_resized(image))
        pixels = np.asarray(image, dtype=np.float32) * self.scale + self.shift
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def _short_side_resized(self, image: Image.Image) -> Image.Image:
        size, (width, height) = self.size, image.size
        if width < height:
            return image.resize((size, int((height / width) * size)), resample=self.resample)
        return image.resize((int((width / height) * size), size), resample=self.resample)

    def _centre_crop(self, image: Image.Image) -> Image.Image:
        left = int(image.width / 2 - self.size / 2)
        top = int(image.height / 2 - self.size / 2)
        return image.crop((left, top, left + self.size, top + self.size))

    def manifest(self) -> dict[str, Any]:
        """:meth:`preprocess` as a searcher's manifest describes it."""
        resample = {Image.Resampling.BICUBIC: "bicubic", Image.Resampling.BILINEAR: "bilinear"}
        if self.resample not in resample:
            raise InvalidInput(
                f"a searcher resizes with bicubic or bilinear, not {self.resample.name.lower()}"
            )
        spec: dict[str, Any] = {
            "resample": resample[self.resample],
            "scale": self.scale.reshape(3).tolist(),
            "shift": self.shift.reshape(3).tolist(),
        }
        if self.resize_mode == "squash":
            spec["resize"] = [self.size, self.size]
        else:
            spec.update(resize_short=self.size, rounding="floor", crop=[self.size, self.size])
        return spec


def _three(config: dict[str, Any], key: str, source: Path) -> np.ndarray:
    value = config.get(key)
    values = value if isinstance(value, list) else [value] * 3
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (3,) or not np.isfinite(array).all() or (key == "std" and (array <= 0).any()):
        raise InvalidInput(f"{source}: {key} {value!r} is not three numbers (one per channel)")
    return array


@dataclass(frozen=True)
class ImmichFolder:
    """A checked Immich CLIP folder: its config, image steps and tokenizer settings."""

    path: Path
    config: dict[str, Any]
    images: ImmichImages
    pad_token: str
    #: The name the model goes by (the folder's, or the Hugging Face repository's).
    name: str

    @property
    def visual_onnx(self) -> Path:
        return self.path / "visual" / "model.onnx"

    @property
    def textual_onnx(self) -> Path:
        return self.path / "textual" / "model.onnx"

    @property
    def tokenizer_file(self) -> Path:
        return self.path / "textual" / "tokenizer.json"

    @property
    def text_config(self) -> dict[str, Any]:
        text = self.config.get("text_cfg")
        return text if isinstance(text, dict) else {}

    @property
    def dim(self) -> int:
        return int(self.config["embed_dim"])

    @property
    def context_length(self) -> int:
        return int(self.text_config.get("context_length", 77))

    @property
    def canonicalize(self) -> bool:
        kwargs = self.text_config.get("tokenizer_kwargs")
        return isinstance(kwargs, dict) and kwargs.get("clean") == "canonicalize"


def read_immich_folder(path: str | os.PathLike[str], *, name: str | None = None) -> ImmichFolder:
    """The Immich CLIP folder at ``path``, each file it needs checked by name."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: no such folder; expected {IMMICH_EXPECTED}")
    folder = folder.resolve()
    config = read_json(folder / "config.json", IMMICH_EXPECTED)
    _check_config(folder / "config.json", config)
    for part in ("visual/model.onnx", "textual/model.onnx", "textual/tokenizer.json"):
        if not (folder / part).is_file():
            raise InvalidInput(f"{folder / part}: missing; expected {IMMICH_EXPECTED}")
    preprocess_file = folder / "visual" / "preprocess_cfg.json"
    images = ImmichImages(read_json(preprocess_file, IMMICH_EXPECTED), preprocess_file)
    tokenizer_config = folder / "textual" / "tokenizer_config.json"
    pad = read_json(tokenizer_config, IMMICH_EXPECTED).get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad  # older files nest it
    if not isinstance(pad, str) or not pad:
        raise InvalidInput(f"{tokenizer_config}: no pad_token; expected the token texts pad with")
    return ImmichFolder(folder, config, images, pad, name or folder.name)


def _check_config(path: Path, config: dict[str, Any]) -> None:
    dim = config.get("embed_dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise InvalidInput(f"{path}: no embed_dim (the width of the vectors); {IMMICH_EXPECTED}")
    text = config.get("text_cfg", {})
    length = text.get("context_length", 77) if isinstance(text, dict) else None
    if not isinstance(length, int) or length <= 0:
        raise InvalidInput(f"{path}: text_cfg.context_length {length!r} is not a token count")
