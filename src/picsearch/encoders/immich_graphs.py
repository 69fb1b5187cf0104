"""An Immich folder's graphs as a one-file searcher runs them.

A searcher feeds its text graph int64 ``input_ids`` (and ``attention_mask``) and
its image graph ``pixels``, and reads L2-normalised ``embedding`` and ``joint``
vectors. Immich's graphs take int32 ``text`` (or ``input_ids`` and
``attention_mask``) and ``image``: they are renamed, casts are put in front, and
the normalisation behind. The tokenizer gets Immich's text cleaning as its
normalizer, so that the searcher, which calls the tokenizer alone, cleans alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import graphs
from .immich_folder import ImmichFolder

__all__ = ["write_query_graphs", "query_tokenizer"]

_SEARCHER_NAMES = {
    "text": "input_ids",
    "input_ids": "input_ids",
    "attention_mask": "attention_mask",
}
_PUNCTUATION = r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]"""


def write_query_graphs(found: ImmichFolder, tokenizer: Any, folder: Path) -> None:
    """Write text.onnx, image.onnx and tokenizer.json for a searcher into ``folder``."""
    onnx = graphs.onnx_package()
    text = graphs.load(found.textual_onnx)
    for value in list(text.graph.input):
        _feed_from(text, value.name, _SEARCHER_NAMES[value.name], onnx.TensorProto.INT64)
    graphs.save(_normalized(text, "embedding", found.dim), folder / "text.onnx")
    image = graphs.load(found.visual_onnx)
    _feed_from(image, image.graph.input[0].name, "pixels", onnx.TensorProto.FLOAT)
    graphs.save(_normalized(image, "joint", found.dim), folder / "image.onnx")
    query_tokenizer(tokenizer, canonicalize=found.canonicalize).save(str(folder / "tokenizer.json"))


def _feed_from(model: Any, name: str, new: str, elem_type: int) -> None:
    """Make the graph input ``name`` an input ``new`` of ``elem_type``, cast back to the
    type the graph takes where they differ."""
    value = next(v for v in model.graph.input if v.name == name)
    wanted = value.type.tensor_type.elem_type
    if name == new and wanted == elem_type:
        return
    inner = f"immich/{name}"
    graphs.rename_value(model, name, inner)
    value.name = new
    value.type.tensor_type.elem_type = elem_type
    if wanted == elem_type:
        graphs.rename_value(model, inner, new)
        return
    cast = graphs.onnx_package().helper.make_node("Cast", [new], [inner], to=wanted)
    model.graph.node.insert(0, cast)


def _normalized(model: Any, output: str, dim: int) -> Any:
    """``model`` with its first output L2-normalised by row as ``output`` (its only one).

    Reductions take their axes as an input (opset 13 and later), so this works on
    the opsets Immich exports at."""
    first = model.graph.output[0].name
    raw = f"immich/{first}"
    graphs.rename_value(model, first, raw)
    finish = graphs.Graph("query")
    squares = finish.op("Mul", [raw, raw])
    total = finish.op("ReduceSum", [squares, finish.axes(-1)], keepdims=1)
    norm = finish.op("Sqrt", [total])
    floor = finish.op("Max", [norm, finish.const("eps", np.float32(1e-12))])
    finish.op("Div", [raw, floor], output)
    return finish.append_to(model, {output: dim})


def query_tokenizer(tokenizer: Any, *, canonicalize: bool) -> Any:
    """A copy of ``tokenizer`` (padding and truncation kept) that cleans texts as Immich
    does before tokenizing: whitespace collapsed; lower case without punctuation if
    ``canonicalize``."""
    from tokenizers import Regex, Tokenizer, normalizers

    copy = Tokenizer.from_str(tokenizer.to_str())
    steps = [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    if canonicalize:
        steps += [normalizers.Replace(Regex(_PUNCTUATION), ""), normalizers.Lowercase()]
    if copy.normalizer is not None:
        steps.append(copy.normalizer)
    copy.normalizer = normalizers.Sequence(steps)
    return copy
