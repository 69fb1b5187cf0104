"""The trained model folder, and the heads as ONNX graphs built from their weights.

A model folder holds::

    config.json       base encoder, sizes, loss, temperature, training metrics
    heads.npz         the heads' weights (float32 arrays; loaded without pickle)
    text_head.onnx    features (n, 384)  -> embedding (n, dim)
    image_head.onnx   features (n, 1280) -> joint (n, dim), visual (n, 1280)
    text_base.onnx    only when MiniLM's last layers were trained: token ids -> (n, 384);
                      heads.npz then also holds those layers as ``text_base/...`` arrays

The graphs are written from the weights with ``onnx.helper`` (no torch), so
they can be rebuilt anywhere ``onnx`` is installed. Inputs are L2-normalised
inside the graphs, so a base encoder's raw outputs can feed them directly;
:func:`compose` joins a base graph and a head graph into one.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, require

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
    "compose",
]

CONFIG = "config.json"
WEIGHTS = "heads.npz"
TEXT_HEAD = "text_head.onnx"
IMAGE_HEAD = "image_head.onnx"
TEXT_BASE = "text_base.onnx"
FORMAT = "picsearch-dual-encoder"
OPSET = 17  # as the base graphs; LayerNormalization needs 17
IR_VERSION = 8
_EPS = 1e-12  # torch.nn.functional.normalize's floor on the norm
_LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def _onnx():
    return require("onnx", package="onnx", extra="default", purpose="exporting the trained heads")


class _Graph:
    """A small helper that names every value under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.onnx = _onnx()
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}/{what}_{self.count}"

    def const(self, what: str, value: np.ndarray) -> str:
        name = self.name(what)
        array = np.asarray(value)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or self.name(kind.lower())
        self.nodes.append(self.onnx.helper.make_node(kind, inputs, [output], **attrs))
        return output

    def normalize(self, x: str, output: str | None = None) -> str:
        norm = self.op("ReduceL2", [x], axes=[-1], keepdims=1)
        floor = self.op("Max", [norm, self.const("eps", np.array(_EPS, np.float32))])
        return self.op("Div", [x, floor], output)

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        w = self.const("weight", weight.astype(np.float32))
        b = self.const("bias", bias.astype(np.float32))
        return self.op("Gemm", [x, w, b], transB=1)

    def gelu(self, x: str) -> str:
        scaled = self.op("Mul", [x, self.const("rsqrt2", np.array(1 / math.sqrt(2), np.float32))])
        one_plus = self.op("Add", [self.op("Erf", [scaled]), self.const("one", np.float32(1))])
        half_x = self.op("Mul", [x, self.const("half", np.array(0.5, np.float32))])
        return self.op("Mul", [half_x, one_plus])


def _head(g: _Graph, x: str, weights: dict[str, np.ndarray], side: str, output: str) -> str:
    def w(name: str) -> np.ndarray:
        return weights[f"{side}.{name}"]

    h = g.dense(g.normalize(x), w("project.weight"), w("project.bias"))
    block = 0
    while f"{side}.blocks.{block}.dense.weight" in weights:
        pre = f"blocks.{block}"
        y = g.dense(g.gelu(h), w(f"{pre}.dense.weight"), w(f"{pre}.dense.bias"))
        summed = g.op("Add", [h, y])
        scale = g.const("ln_scale", w(f"{pre}.norm.weight").astype(np.float32))
        shift = g.const("ln_bias", w(f"{pre}.norm.bias").astype(np.float32))
        h = g.op("LayerNormalization", [summed, scale, shift], axis=-1, epsilon=_LN_EPS)
        block += 1
    return g.normalize(h, output)


def head_graph(weights: dict[str, np.ndarray], side: str):
    """The ``text`` or ``image`` head as an ONNX model (see the module docstring)."""
    if side not in ("text", "image"):
        raise ValueError(f"side must be 'text' or 'image', not {side!r}")
    onnx = _onnx()
    g = _Graph(f"{side}_head")
    in_dim = weights[f"{side}.project.weight"].shape[1]
    dim = weights[f"{side}.project.weight"].shape[0]
    outputs = [("embedding", dim)] if side == "text" else [("joint", dim), ("visual", in_dim)]
    _head(g, "features", weights, side, outputs[0][0])
    if side == "image":
        g.normalize("features", "visual")
    graph = onnx.helper.make_graph(
        g.nodes,
        f"picsearch_{side}_head",
        [onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["n", in_dim])],
        [
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["n", size])
            for name, size in outputs
        ],
        g.initializers,
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    model.producer_name = "picsearch"
    onnx.checker.check_model(model)
    return model


def write_model_folder(
    folder: Path, weights: dict[str, np.ndarray], config: dict, *, text_base: bytes | None = None
) -> None:
    """Write the weights, the graphs and the config (last, so a folder with it is whole).

    ``text_base`` is the fine-tuned text base graph, if any; without it an old
    one is removed, so a folder never pairs new heads with a stale text base.
    """
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
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


def compose(base, head, *, connect: dict[str, str], outputs: list[str]):
    """``base`` (changed in place) followed by ``head``: ``connect`` maps base outputs to
    head inputs; the graph outputs become the head's ``outputs``.

    The head's values are all named under its own prefix, so nothing collides.
    Nodes that no output needs any more (the base's other outputs) are dropped.
    """
    graph = base.graph
    renamed = {name: f"base/{name}" for name in connect}
    for node in graph.node:
        node.output[:] = [renamed.get(name, name) for name in node.output]
        node.input[:] = [renamed.get(name, name) for name in node.input]
    feeds = {into: renamed[out] for out, into in connect.items()}
    for node in head.graph.node:
        node.input[:] = [feeds.get(name, name) for name in node.input]
        graph.node.append(node)
    graph.initializer.extend(head.graph.initializer)
    del graph.output[:]
    graph.output.extend(value for value in head.graph.output if value.name in outputs)
    _prune(graph, outputs)
    return base


def _prune(graph, outputs: list[str]) -> None:
    """Drop the nodes and initializers that none of ``outputs`` depends on."""
    needed = set(outputs)
    keep = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            keep.append(node)
            needed.update(node.input)
    kept = list(reversed(keep))
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    infos = [value for value in graph.value_info if value.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(infos)
