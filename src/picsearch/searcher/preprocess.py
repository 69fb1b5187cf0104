"""A query image to the pixels an exported image graph takes, as its manifest says.

The manifest's ``encoders.image.preprocess`` (``Preprocess``) names every step:
resize (to a size, or the short side to a length), centre crop (padding a
smaller image first where asked), then ``pixels * scale + shift`` per channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput
from .manifest import Preprocess
from .rules import ManifestFieldError

__all__ = ["preprocess", "image_from_array"]


def image_from_array(array: np.ndarray) -> Image.Image:
    """A (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) uint8 array as a PIL image."""
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
    steps = _checked(spec)
    image = image.convert("RGB") if image.mode != "RGB" else image
    resample = _RESAMPLE[steps.resample]
    if steps.resize:
        height, width = steps.resize
        image = image.resize((width, height), resample)
    elif steps.resize_short:
        image = _resize_short(image, steps, resample)
    if steps.crop:
        image = _centre_crop(image, steps.crop, steps.pad_to_crop)
    pixels = np.asarray(image, dtype=np.float32)
    scale, shift = (np.asarray(v, dtype=np.float32) for v in (steps.scale, steps.shift))
    return np.ascontiguousarray((pixels * scale + shift).transpose(2, 0, 1))


def _checked(spec: Preprocess | Mapping[str, Any]) -> Preprocess:
    if isinstance(spec, Preprocess):
        return spec
    try:
        return Preprocess.from_json(spec)
    except ManifestFieldError as exc:
        raise InvalidInput(f"image preprocessing: {exc}") from None


def _centre_crop(image: Image.Image, crop: tuple[int, int], pad: bool) -> Image.Image:
    crop_h, crop_w = crop
    if pad and (image.width < crop_w or image.height < crop_h):
        canvas = Image.new("RGB", (max(image.width, crop_w), max(image.height, crop_h)))
        canvas.paste(
            image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2)
        )
        image = canvas
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def _resize_short(image: Image.Image, spec: Preprocess, resample: Image.Resampling) -> Image.Image:
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
