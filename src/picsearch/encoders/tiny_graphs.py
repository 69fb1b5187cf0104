"""The tiny colour encoder as ONNX graphs, so tests can export and fuzz real searchers fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import query_graphs as graphs

__all__ = ["write_tokenizer", "write_text_graph", "write_image_graph"]


def write_tokenizer(path: Path, words: list[str]) -> None:
    """Lower-cased word-level tokens: id 0 pads, 1 is any other word, 2.. the colour words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1} | {word: i + 2 for i, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=64)
    tokenizer.save(str(path))


def write_text_graph(path: Path, colours: int) -> None:
    """Counts of each colour word; no colour word at all: no preference (all ones)."""
    helper = graphs._onnx().helper
    table = np.zeros((colours + 2, colours), dtype=np.float32)
    table[2:] = np.eye(colours, dtype=np.float32)
    inits = [
        graphs.tensor("table", table),
        graphs.tensor("axis1", np.array([1], dtype=np.int64)),
        graphs.tensor("axis2", np.array([2], dtype=np.int64)),
        graphs.tensor("zero", np.array(0.0, dtype=np.float32)),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["onehot"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=1),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["onehot", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["counts"], keepdims=0),
        helper.make_node("ReduceSum", ["counts", "axis1"], ["total"], keepdims=1),
        helper.make_node("Equal", ["total", "zero"], ["none"]),
        helper.make_node("Cast", ["none"], ["nonef"], to=1),
        helper.make_node("Add", ["counts", "nonef"], ["scores"]),
    ]
    norm, norm_inits = graphs.l2_normalize_nodes("scores", "embedding")
    inputs = [
        helper.make_tensor_value_info(name, 7, ["n", "tokens"])
        for name in ("input_ids", "attention_mask")
    ]
    output = [helper.make_tensor_value_info("embedding", 1, ["n", colours])]
    graph = helper.make_graph(nodes + norm, "tiny_text", inputs, output, inits + norm_inits)
    graphs.save(graphs.new_model(graph), path)


def write_image_graph(path: Path, palette: np.ndarray) -> None:
    """joint: histogram of nearest palette colours; visual: mean colour of 16 stripes."""
    helper = graphs._onnx().helper
    colours = len(palette)
    inits = [
        graphs.tensor("palette", palette.reshape(1, 1, colours, 3).astype(np.float32)),
        graphs.tensor("pixels_shape", np.array([-1, 256, 1, 3], dtype=np.int64)),
        graphs.tensor("stripes_shape", np.array([-1, 48], dtype=np.int64)),
        graphs.tensor("depth", np.array(colours, dtype=np.int64)),
        graphs.tensor("onehot_values", np.array([0.0, 1.0], dtype=np.float32)),
        graphs.tensor("axis1", np.array([1], dtype=np.int64)),
        graphs.tensor("axis3", np.array([3], dtype=np.int64)),
        graphs.tensor("middle", np.array(127.5, dtype=np.float32)),
    ]
    nodes = [
        helper.make_node("Transpose", ["pixels"], ["hwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["hwc", "pixels_shape"], ["flat"]),
        helper.make_node("Sub", ["flat", "palette"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["square"]),
        helper.make_node("ReduceSum", ["square", "axis3"], ["distance"], keepdims=0),
        helper.make_node("ArgMin", ["distance"], ["nearest"], axis=2, keepdims=0),
        helper.make_node("OneHot", ["nearest", "depth", "onehot_values"], ["hits"], axis=-1),
        helper.make_node("ReduceSum", ["hits", "axis1"], ["histogram"], keepdims=0),
        helper.make_node("ReduceMean", ["hwc"], ["stripe_means"], axes=[2], keepdims=0),
        helper.make_node("Reshape", ["stripe_means", "stripes_shape"], ["stripes"]),
        helper.make_node("Sub", ["stripes", "middle"], ["centred"]),
    ]
    joint, joint_inits = graphs.l2_normalize_nodes("histogram", "joint")
    visual, visual_inits = graphs.l2_normalize_nodes("centred", "visual")
    inputs = [helper.make_tensor_value_info("pixels", 1, ["n", 3, 16, 16])]
    outputs = [
        helper.make_tensor_value_info("joint", 1, ["n", colours]),
        helper.make_tensor_value_info("visual", 1, ["n", 48]),
    ]
    graph = helper.make_graph(
        nodes + joint + visual, "tiny_image", inputs, outputs, inits + joint_inits + visual_inits
    )
    graphs.save(graphs.new_model(graph), path)
