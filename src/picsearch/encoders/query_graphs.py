"""Small ONNX graphs that finish an encoder's query side inside ONNX itself.

A one-file searcher carries its query encoders as self-contained ONNX graphs,
so that any ONNX runtime (in any language) reproduces picsearch's vectors with
no picsearch code: the L2 normalisation, and the default model's bridge from
ImageNet logits into the text space, are appended here as plain ONNX nodes.
Building graphs needs the ``onnx`` package; running them needs onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import require

__all__ = ["OPSET", "append", "l2_normalize_nodes", "save", "load", "tensor"]

#: The opset of every graph picsearch writes (LayerNormalization needs 17).
OPSET = 17
_EPS = 1e-12


def _onnx():
    return require("onnx", package="onnx", extra="default", purpose="exporting a searcher")


def tensor(name: str, array: np.ndarray):
    """An initializer holding ``array``."""
    return _onnx().numpy_helper.from_array(np.ascontiguousarray(array), name=name)


def l2_normalize_nodes(source: str, target: str) -> tuple[list, list]:
    """Nodes and initializers computing ``target = source / max(||source||, eps)`` by row."""
    helper = _onnx().helper
    eps = tensor(f"{target}__eps", np.array(_EPS, dtype=np.float32))
    nodes = [
        helper.make_node("ReduceL2", [source], [f"{target}__norm"], axes=[-1], keepdims=1),
        helper.make_node("Max", [f"{target}__norm", eps.name], [f"{target}__safe"]),
        helper.make_node("Div", [source, f"{target}__safe"], [target]),
    ]
    return nodes, [eps]


def append(
    model,
    nodes: list,
    initializers: list,
    outputs: dict[str, int | None],
):
    """``model`` with ``nodes`` added after it; its outputs become ``outputs`` (name → width)."""
    onnx = _onnx()
    graph = model.graph
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    del graph.output[:]
    for name, width in outputs.items():
        graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["n", width])
        )
    onnx.checker.check_model(model)
    return model


def new_model(graph):
    """A model around ``graph`` with picsearch's opset."""
    onnx = _onnx()
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
    onnx.checker.check_model(model)
    return model


def load(path: Path):
    return _onnx().load(str(path))


def save(model, path: Path) -> None:
    _onnx().save(model, str(path))


def rename_value(model, old: str, new: str) -> None:
    """Rename a value everywhere in the graph (so an appended node may take over ``old``)."""
    graph = model.graph
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new


def bridge_nodes(
    logits: str, target: str, bank: np.ndarray, *, top_k: int, temperature: float
) -> tuple[list, list]:
    """The default model's bridge: softmax over the top-k logits, weighting class embeddings."""
    helper = _onnx().helper
    inits = [
        tensor("bridge__bank", bank.astype(np.float32)),
        tensor("bridge__k", np.array([top_k], dtype=np.int64)),
        tensor("bridge__temperature", np.array(temperature, dtype=np.float32)),
        tensor("bridge__axis1", np.array([1], dtype=np.int64)),
    ]
    nodes = [
        helper.make_node(
            "TopK", [logits, "bridge__k"], ["bridge__top", "bridge__idx"], axis=-1, sorted=1
        ),
        helper.make_node("Div", ["bridge__top", "bridge__temperature"], ["bridge__scaled"]),
        helper.make_node("Softmax", ["bridge__scaled"], ["bridge__weights"], axis=-1),
        helper.make_node("Gather", ["bridge__bank", "bridge__idx"], ["bridge__classes"], axis=0),
        helper.make_node("Unsqueeze", ["bridge__weights", "bridge__axis1"], ["bridge__w3"]),
        helper.make_node("MatMul", ["bridge__w3", "bridge__classes"], ["bridge__mixed3"]),
        helper.make_node("Squeeze", ["bridge__mixed3", "bridge__axis1"], ["bridge__mixed"]),
    ]
    norm_nodes, norm_inits = l2_normalize_nodes("bridge__mixed", target)
    return nodes + norm_nodes, inits + norm_inits
