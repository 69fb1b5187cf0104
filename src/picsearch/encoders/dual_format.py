"""The dual-encoder folder that ``picsearch train`` writes and ``dual:`` models load.

A model folder holds::

    config.json       base encoder, sizes, loss, temperature, training metrics
    heads.npz         the heads' weights (float32 arrays; loaded without pickle)
    text_head.onnx    features (n, 384)  -> embedding (n, dim)
    image_head.onnx   features (n, 1280) -> joint (n, dim), visual (n, 1280)
    text_base.onnx    only when MiniLM's last layers were trained: token ids -> (n, 384);
                      heads.npz then also holds those layers as ``text_base/...`` arrays

The head graphs are built from the weights (``graphs``, no torch), so they can
be rebuilt anywhere ``onnx`` is installed. Inputs are L2-normalised inside the
graphs, so a base encoder's raw outputs can feed them directly;
:func:`graphs.compose` joins a base graph and a head graph into one.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .graphs import Graph

__all__ = [
    "CONFIG",
    "WEIGHTS",
    "TEXT_HEAD",
    "IMAGE_HEAD",
    "TEXT_BASE",
    "FORMAT",
    "head_graph",
    "write_model_folder",
    "load_weights",
    "read_config",
]

CONFIG = "config.json"
WEIGHTS = "heads.npz"
TEXT_HEAD = "text_head.onnx"
IMAGE_HEAD = "image_head.onnx"
TEXT_BASE = "text_base.onnx"
FORMAT = "picsearch-dual-encoder"


def _head(g: Graph, x: str, weights: dict[str, np.ndarray], side: str, output: str) -> str:
    """The ProjectionHead of ``side``: dense, then residual GELU blocks, normalised."""

    def w(name: str) -> np.ndarray:
        return weights[f"{side}.{name}"]

    h = g.dense(g.normalize(x), w("project.weight"), w("project.bias"))
    block = 0
    while f"{side}.blocks.{block}.dense.weight" in weights:
        pre = f"blocks.{block}"
        y = g.dense(g.gelu(h), w(f"{pre}.dense.weight"), w(f"{pre}.dense.bias"))
        summed = g.op("Add", [h, y])
        h = g.layer_norm(summed, w(f"{pre}.norm.weight"), w(f"{pre}.norm.bias"))
        block += 1
    return g.normalize(h, output)


def head_graph(weights: dict[str, np.ndarray], side: str) -> Any:
    """The ``text`` or ``image`` head as an ONNX model (see the module docstring)."""
    if side not in ("text", "image"):
        raise ValueError(f"side must be 'text' or 'image', not {side!r}")
    g = Graph(f"{side}_head")
    in_dim = weights[f"{side}.project.weight"].shape[1]
    dim = weights[f"{side}.project.weight"].shape[0]
    outputs = [("embedding", dim)] if side == "text" else [("joint", dim), ("visual", in_dim)]
    _head(g, "features", weights, side, outputs[0][0])
    if side == "image":
        g.normalize("features", "visual")
    inputs = [g.value("features", ["n", in_dim])]
    return g.model(
        f"picsearch_{side}_head", inputs, [g.value(name, ["n", size]) for name, size in outputs]
    )


def write_model_folder(
    folder: Path, weights: dict[str, np.ndarray], config: dict, *, text_base: bytes | None = None
) -> None:
    """Write the weights, the graphs and the config (last, so a folder with it is whole).

    ``text_base`` is the fine-tuned text base graph, if any; without it an old
    one is removed, so a folder never pairs new heads with a stale text base.
    """
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    arrays: dict[str, Any] = dict(weights)  # numpy types **kwds as if they were its options
    np.savez(buffer, **arrays)
    _atomic(folder / WEIGHTS, buffer.getvalue())
    for side, name in (("text", TEXT_HEAD), ("image", IMAGE_HEAD)):
        _atomic(folder / name, head_graph(weights, side).SerializeToString())
    if text_base is None:
        (folder / TEXT_BASE).unlink(missing_ok=True)
    else:
        _atomic(folder / TEXT_BASE, text_base)
    _atomic(folder / CONFIG, json.dumps(config, indent=1, sort_keys=True).encode())


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_weights(folder: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(folder / WEIGHTS, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None


def read_config(folder: Path) -> dict:
    """The folder's config.json, checked to be a picsearch dual-encoder folder."""
    hint = "train one with 'picsearch train ... -o FOLDER'"
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: no such model folder; {hint}")
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{folder}: no {CONFIG}, not a trained model folder; {hint}") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{folder / CONFIG}: unreadable ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise InvalidInput(f"{folder / CONFIG}: not a picsearch dual-encoder config; {hint}")
    return config
