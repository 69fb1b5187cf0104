"""Every ONNX graph picsearch writes itself is built here, with ``onnx.helper`` (no torch).

They are of three kinds:

- the query side of a one-file searcher: an encoder's exported graph with the
  L2 normalisation (and the default model's bridge from ImageNet logits into
  the text space) appended as plain ONNX nodes, so that any ONNX runtime
  reproduces picsearch's vectors with no picsearch code;
- the tiny colour encoder as graphs, so tests can export and fuzz real searchers fast;
- a trained dual encoder's projection heads, and their composition with the
  base encoder's graphs.

A :class:`Graph` collects nodes and initializers whose values are all named
under one prefix, so graphs joined later never collide. Building graphs needs
the ``onnx`` package; running them needs onnxruntime only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require

__all__ = [
    "OPSET",
    "IR_VERSION",
    "Graph",
    "onnx_package",
    "load",
    "save",
    "rename_value",
    "compose",
]

#: The opset of every graph picsearch writes (LayerNormalization needs 17).
OPSET = 17
#: The IR version of the graphs written from scratch: readable by older runtimes too.
IR_VERSION = 8
_EPS = 1e-12  # torch.nn.functional.normalize's floor on the norm
_LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default


def onnx_package() -> Any:
    """The ``onnx`` module, or MissingDependency with the install hint."""
    return require(
        "onnx", package="onnx", extra="default", purpose="exporting a searcher or a trained model"
    )


class Graph:
    """Nodes and initializers under one name prefix; each builder returns its output's name."""

    def __init__(self, prefix: str) -> None:
        self.onnx = onnx_package()
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}/{what}_{self.count}"

    def const(self, what: str, value: Any) -> str:
        """An initializer holding ``value`` (an array or a numpy scalar, dtype kept)."""
        name = self.name(what)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or self.name(kind.lower())
        self.nodes.append(self.onnx.helper.make_node(kind, inputs, [output], **attrs))
        return output

    def to_float(self, x: str) -> str:
        return self.op("Cast", [x], to=self.onnx.TensorProto.FLOAT)

    def axes(self, *axes: int) -> str:
        """The ``axes`` input of ReduceSum, Unsqueeze and Squeeze."""
        return self.const("axes", np.array(axes, dtype=np.int64))

    def normalize(self, x: str, output: str | None = None) -> str:
        """``x / max(||x||, eps)`` by row, as torch.nn.functional.normalize computes it."""
        norm = self.op("ReduceL2", [x], axes=[-1], keepdims=1)
        floor = self.op("Max", [norm, self.const("eps", np.float32(_EPS))])
        return self.op("Div", [x, floor], output)

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        """``x @ weight.T + bias`` (torch.nn.Linear's layout)."""
        w = self.const("weight", weight.astype(np.float32))
        b = self.const("bias", bias.astype(np.float32))
        return self.op("Gemm", [x, w, b], transB=1)

    def gelu(self, x: str) -> str:
        """The exact (erf) GELU, as torch.nn.GELU() computes it."""
        scaled = self.op("Mul", [x, self.const("rsqrt2", np.float32(1 / math.sqrt(2)))])
        one_plus = self.op("Add", [self.op("Erf", [scaled]), self.const("one", np.float32(1))])
        half_x = self.op("Mul", [x, self.const("half", np.float32(0.5))])
        return self.op("Mul", [half_x, one_plus])

    def layer_norm(self, x: str, scale: np.ndarray, shift: np.ndarray) -> str:
        weight = self.const("ln_scale", scale.astype(np.float32))
        bias = self.const("ln_bias", shift.astype(np.float32))
        return self.op("LayerNormalization", [x, weight, bias], axis=-1, epsilon=_LAYER_NORM_EPS)

    def top_k(self, x: str, k: int) -> tuple[str, str]:
        """The ``k`` largest values of each row (sorted) and their indices."""
        values, indices = self.name("top_values"), self.name("top_indices")
        k_input = self.const("k", np.array([k], dtype=np.int64))
        node = self.onnx.helper.make_node("TopK", [x, k_input], [values, indices], axis=-1)
        self.nodes.append(node)
        return values, indices

    def value(self, name: str, shape: list[Any], dtype: Any = np.float32) -> Any:
        """The description of a graph input or output."""
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.onnx.helper.make_tensor_value_info(name, elem, shape)

    def model(self, name: str, inputs: list[Any], outputs: list[Any]) -> Any:
        """A checked standalone model of this graph's nodes."""
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", OPSET)]
        model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION)
        model.producer_name = "picsearch"
        self.onnx.checker.check_model(model)
        return model

    def append_to(self, model: Any, outputs: dict[str, int]) -> Any:
        """``model`` with this graph's nodes run after it; its outputs become ``outputs``
        (name → width), each (n, width) float32."""
        graph = model.graph
        graph.node.extend(self.nodes)
        graph.initializer.extend(self.initializers)
        del graph.output[:]
        graph.output.extend(self.value(name, ["n", width]) for name, width in outputs.items())
        self.onnx.checker.check_model(model)
        return model


def load(path: Path) -> Any:
    return onnx_package().load(str(path))


def save(model: Any, path: Path) -> None:
    onnx_package().save(model, str(path))


def rename_value(model: Any, old: str, new: str) -> None:
    """Rename a value everywhere in the graph (so an appended node may take over ``old``)."""
    graph = model.graph
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new


def compose(base: Any, head: Any, *, connect: dict[str, str], outputs: list[str]) -> Any:
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


def _prune(graph: Any, outputs: list[str]) -> None:
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
