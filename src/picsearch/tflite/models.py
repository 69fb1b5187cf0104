"""An encoder's query graphs reshaped for the TensorFlow Lite Task Library.

The Task Library's text path (BERT) feeds exactly three int32 ``[1, L]`` tensors (ids,
mask, segment ids) tokenized from a WordPiece ``vocab.txt``, and both searchers read
output 0 as the embedding, batch 1. So the text graph gets three int32 inputs cast to
what it took before, the image graph keeps one output, and every shape is fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import graphs
from ..errors import InvalidInput

__all__ = ["TEXT_INPUTS", "ImageInput", "text_for_tflite", "image_for_tflite", "write_vocab"]

#: The text model's inputs after the change, in the Task Library's BERT order.
TEXT_INPUTS = ("input_ids", "attention_mask", "segment_ids")
_SPECIAL = ("[CLS]", "[SEP]", "[UNK]")


@dataclass(frozen=True)
class ImageInput:
    """What the Task Library needs to feed the image graph: its size and normalisation."""

    height: int
    width: int
    mean: list[float]
    std: list[float]


def write_vocab(tokenizer_json: Path, target: Path, *, model: str) -> None:
    """The WordPiece vocabulary of ``tokenizer_json`` as a BERT ``vocab.txt`` (a token a
    line, in id order), or InvalidInput when the Task Library cannot tokenize like it."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    kind = (spec.get("model") or {}).get("type")
    if kind != "WordPiece":
        raise InvalidInput(
            f"model '{model}' tokenizes text with {kind or 'an unknown tokenizer'}: the Task "
            "Library's text searcher reads BERT WordPiece vocabularies only (export the image "
            "searcher alone with --tflite-only image)"
        )
    vocab: dict[str, int] = spec["model"]["vocab"]
    missing = [token for token in _SPECIAL if token not in vocab]
    if missing or sorted(vocab.values()) != list(range(len(vocab))):
        raise InvalidInput(
            f"model '{model}': its WordPiece vocabulary lacks {', '.join(missing) or 'dense ids'}"
            ", which the Task Library's BERT tokenizer needs"
        )
    tokens = sorted(vocab, key=vocab.__getitem__)
    target.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")


def text_for_tflite(source: Path, target: Path, *, tokens: int, model: str) -> None:
    """``source``'s text graph with the three int32 ``[1, tokens]`` inputs and one output."""
    onnx = graphs.onnx_package()
    graph_model = graphs.load(source)
    graph = graph_model.graph
    old = {value.name for value in graph.input}
    if "input_ids" not in old or "embedding" not in {value.name for value in graph.output}:
        raise InvalidInput(f"model '{model}': its text graph has no input_ids -> embedding")
    g = graphs.Graph("tflite")
    for name in old:
        graphs.rename_value(graph_model, name, f"{name}__int64")
        g.op("Cast", [_source_of(name)], f"{name}__int64", to=onnx.TensorProto.INT64)
    unused = [name for name in TEXT_INPUTS if _source_of_any(name, old) is None]
    segment = g.op("Cast", ["segment_ids"], to=onnx.TensorProto.INT64)
    if "segment_ids" in unused and _wire_token_types(graph, segment):
        unused.remove("segment_ids")
    _prepend(graph, g)
    graphs.rename_value(graph_model, "embedding", "embedding__in")
    finish = graphs.Graph("keep")
    _keep_alive(finish, "embedding__in", unused, "embedding")
    graph.node.extend(finish.nodes)
    graph.initializer.extend(finish.initializers)
    del graph.input[:]
    graph.input.extend(g.value(name, [1, tokens], np.int32) for name in TEXT_INPUTS)
    width = _width(graph.output[0])
    del graph.output[:]
    graph.output.append(g.value("embedding", [1, width]))
    onnx.checker.check_model(graph_model)
    graphs.save(graph_model, target)


def _source_of(name: str) -> str:
    return "segment_ids" if name == "token_type_ids" else name


def _source_of_any(name: str, old: set[str]) -> str | None:
    """Which old input ``name`` feeds, or None when the graph never read it."""
    if name == "segment_ids":
        return "token_type_ids" if "token_type_ids" in old else None
    return name if name in old else None


def _wire_token_types(graph: Any, segment: str) -> bool:
    """Feed the segment ids to the token-type embedding lookup the export made constant
    (all zeros, as the Task Library's segment ids are for one sentence)."""
    tables = {t.name for t in graph.initializer if "token_type" in t.name}
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in tables:
            node.input[1] = segment
            return True
    return False


def _keep_alive(g: graphs.Graph, embedding: str, unused: list[str], output: str) -> None:
    """``output`` = ``embedding`` + 0 x each unused input: the Task Library needs all three
    inputs, and a converter drops inputs nothing reads."""
    total = embedding
    for name in unused:
        summed = g.op("ReduceSum", [g.to_float(name)], keepdims=1)
        total = g.op("Add", [total, g.op("Mul", [summed, g.const("zero", np.float32(0))])])
    g.op("Identity", [total], output)


def _prepend(graph: Any, g: graphs.Graph) -> None:
    nodes = [*g.nodes, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(g.initializers)


def _width(value: Any) -> int:
    dims = value.type.tensor_type.shape.dim
    return int(dims[-1].dim_value)


def image_for_tflite(
    source: Path, target: Path, *, output: str, preprocess: dict[str, Any], model: str
) -> ImageInput:
    """``source``'s image graph reduced to ``output``, batch 1 at the size it is fed."""
    onnx = graphs.onnx_package()
    graph_model = graphs.load(source)
    outputs = [value.name for value in graph_model.graph.output]
    if output not in outputs:
        raise InvalidInput(f"model '{model}': its image graph has no '{output}' output")
    inputs = list(graph_model.graph.input)
    if len(inputs) != 1:
        raise InvalidInput(f"model '{model}': its image graph takes {len(inputs)} inputs, not 1")
    height, width = _image_size(preprocess, model)
    staged = target.with_suffix(".full.onnx")
    dims = inputs[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, 3, height, width), strict=True):
        dim.Clear()
        dim.dim_value = size
    graphs.save(graph_model, staged)
    onnx.utils.extract_model(str(staged), str(target), [inputs[0].name], [output])
    staged.unlink()
    scale = np.asarray(preprocess.get("scale", [1.0] * 3), dtype=np.float64)
    shift = np.asarray(preprocess.get("shift", [0.0] * 3), dtype=np.float64)
    # pixels * scale + shift == (pixels - mean) / std
    return ImageInput(
        height=height, width=width, mean=(-shift / scale).tolist(), std=(1.0 / scale).tolist()
    )


def _image_size(preprocess: dict[str, Any], model: str) -> tuple[int, int]:
    size = preprocess.get("crop") or preprocess.get("resize")
    if not size:
        raise InvalidInput(f"model '{model}': its images have no fixed size to convert at")
    height, width = (int(v) for v in size)
    return height, width
