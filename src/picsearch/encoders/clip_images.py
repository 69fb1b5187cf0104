"""A CLIP folder's image processor settings, reproduced with numpy and Pillow.

:class:`ImageSettings` reads ``preprocessor_config.json`` (resize, centre crop,
rescale, normalise, with CLIP's or SigLIP's defaults for what it leaves out),
preprocesses images as the Hugging Face processor would, and describes the same
steps for a one-file searcher's manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

__all__ = ["ImageSettings"]

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageSettings:
    """The image processor settings that :meth:`preprocess` reproduces."""

    def __init__(self, config: dict[str, Any], model_type: str, image_size: int) -> None:
        self.do_resize = bool(config.get("do_resize", True))
        self.do_center_crop = bool(config.get("do_center_crop", model_type == "clip"))
        self.do_rescale = bool(config.get("do_rescale", True))
        self.do_normalize = bool(config.get("do_normalize", True))
        self.rescale_factor = float(config.get("rescale_factor", 1 / 255))
        self._read_sizes(config, model_type, image_size)
        self._read_normalisation(config, model_type)
        self.resample = Image.Resampling(int(config.get("resample", Image.Resampling.BICUBIC)))
        if self.do_center_crop:
            self.output_hw = self.crop_hw
        elif self.resize_hw:
            self.output_hw = self.resize_hw
        else:
            self.output_hw = (image_size, image_size)

    def _read_sizes(self, config: dict[str, Any], model_type: str, image_size: int) -> None:
        size = config.get("size") or {}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = config.get("crop_size") or {}
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        self.shortest_edge: int | None = None
        self.resize_hw: tuple[int, int] | None = None
        if "shortest_edge" in size:
            self.shortest_edge = int(size["shortest_edge"])
        elif "height" in size and "width" in size:
            self.resize_hw = (int(size["height"]), int(size["width"]))
        elif model_type == "clip":
            self.shortest_edge = image_size
        else:
            self.resize_hw = (image_size, image_size)
        self.crop_hw = (int(crop.get("height", image_size)), int(crop.get("width", image_size)))

    def _read_normalisation(self, config: dict[str, Any], model_type: str) -> None:
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

    @property
    def decode_size(self) -> int:
        if self.shortest_edge:
            return self.shortest_edge
        if self.resize_hw:
            return min(self.resize_hw)
        return min(self.crop_hw)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One image to (3, H, W) float32 as the folder's image processor would make it."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.do_resize:
            image = self._resized(image)
        if self.do_center_crop:
            image = self._cropped(image)
        pixels = np.asarray(image, dtype=np.float32) * self.scale + self.shift
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def _resized(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if self.shortest_edge is not None:
            short, long = (width, height) if width <= height else (height, width)
            new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
            size = (new_short, new_long) if width <= height else (new_long, new_short)
        else:
            fixed_height, fixed_width = self.resize_hw or self.crop_hw  # resize_hw is set here
            size = (fixed_width, fixed_height)
        return image.resize(size, self.resample) if size != (width, height) else image

    def _cropped(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        crop_h, crop_w = self.crop_hw
        if width < crop_w or height < crop_h:  # pad like the processor: zeros around
            canvas = Image.new("RGB", (max(width, crop_w), max(height, crop_h)))
            canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
            image, width, height = canvas, canvas.width, canvas.height
        top = (height - crop_h) // 2
        left = (width - crop_w) // 2
        return image.crop((left, top, left + crop_w, top + crop_h))

    def manifest(self) -> dict[str, Any]:
        """:meth:`preprocess` as a searcher's manifest describes it to a runtime."""
        spec: dict[str, Any] = {
            "resample": {Image.Resampling.BICUBIC: "bicubic"}.get(self.resample, "bilinear"),
            "scale": self.scale.reshape(3).tolist(),
            "shift": self.shift.reshape(3).tolist(),
        }
        if self.do_resize and self.shortest_edge is not None:
            spec.update(resize_short=self.shortest_edge, rounding="floor", pad_to_crop=True)
        elif self.do_resize:
            height, width = self.resize_hw or self.crop_hw
            spec["resize"] = [height, width]
        if self.do_center_crop:
            spec["crop"] = list(self.crop_hw)
        return spec
