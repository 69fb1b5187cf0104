"""The optional encoder abilities (runtime-checkable Protocols), the registry, and the one
ONNX graph builder checked against numpy through ONNX Runtime. Fast: no model weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from picsearch.encoders import (
    Encoder,
    ExportsQueryModel,
    OnnxGraphBase,
    PreparesImages,
    ProjectsBase,
    load_encoder,
    register_encoder,
)
from picsearch.encoders.tiny import TinyEncoder
from picsearch.errors import InvalidInput


class _Preparing(TinyEncoder):
    """The tiny encoder that also loads its image model ahead of use."""

    def __init__(self) -> None:
        self.prepared = 0

    def prepare_images(self) -> None:
        self.prepared += 1


def test_abilities_are_what_an_encoder_implements() -> None:
    tiny = TinyEncoder()
    assert isinstance(tiny, Encoder) and isinstance(tiny, ExportsQueryModel)
    assert not isinstance(tiny, PreparesImages)
    assert not isinstance(tiny, OnnxGraphBase) and not isinstance(tiny, ProjectsBase)
    assert isinstance(_Preparing(), PreparesImages)


def test_indexing_prepares_an_encoder_that_can(tmp_path) -> None:
    from PIL import Image

    import picsearch

    Image.new("RGB", (40, 30), (220, 30, 30)).save(tmp_path / "red.png")
    encoder = _Preparing()
    register_encoder("preparing", lambda _: encoder)
    with picsearch.open(tmp_path / "lib.db", model="preparing") as library:
        library.index([tmp_path], concepts="off")
    assert encoder.prepared == 1


def test_registry_builds_each_spec_once_and_names_the_known_families() -> None:
    assert load_encoder("tiny") is load_encoder("tiny")
    with pytest.raises(InvalidInput, match="unknown model 'nope'.*default.*dual.*tiny"):
        load_encoder("nope")


def _run(model, **feeds: np.ndarray) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_graph_builders_match_numpy() -> None:
    pytest.importorskip("onnx")
    from picsearch.encoders.graphs import Graph

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    weight = rng.standard_normal((3, 4)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    scale, shift = rng.standard_normal(3).astype(np.float32), np.ones(3, np.float32)

    g = Graph("check")
    dense = g.dense("x", weight, bias)
    g.normalize(dense, "normalized")
    g.op("Identity", [g.gelu(dense)], "gelu")
    g.op("Identity", [g.layer_norm(dense, scale, shift)], "layer_norm")
    values, indices = g.top_k("x", 2)
    g.op("Identity", [values], "top")
    g.op("Identity", [indices], "top_indices")
    outputs = [g.value(name, ["n", 3]) for name in ("normalized", "gelu", "layer_norm")]
    outputs += [g.value("top", ["n", 2]), g.value("top_indices", ["n", 2], np.int64)]
    normalized, gelu, layer_norm, top, top_indices = _run(
        g.model("check", [g.value("x", ["n", 4])], outputs), x=x
    )

    y = x @ weight.T + bias
    np.testing.assert_allclose(normalized, y / np.linalg.norm(y, axis=1, keepdims=True), rtol=1e-5)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(gelu, 0.5 * y * (1 + erf(y / math.sqrt(2))), rtol=1e-5, atol=1e-6)
    centred = y - y.mean(axis=1, keepdims=True)
    expected = centred / np.sqrt(centred.var(axis=1, keepdims=True) + 1e-5) * scale + shift
    np.testing.assert_allclose(layer_norm, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(top_indices, np.argsort(-x, axis=1)[:, :2])
    np.testing.assert_allclose(top, np.take_along_axis(x, top_indices, axis=1))


def test_tiny_query_graphs_reproduce_the_encoder(tmp_path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("tokenizers")
    from PIL import Image
    from tokenizers import Tokenizer

    from picsearch.encoders import graphs

    tiny = TinyEncoder()
    description = tiny.export_query_model(tmp_path)
    assert description["image"]["outputs"] == ["joint", "visual"]
    texts = ["a red and a blue car", "nothing in particular", "GREEN green"]
    tokens = Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode_batch(texts)
    ids = np.array([t.ids for t in tokens], np.int64)
    mask = np.array([t.attention_mask for t in tokens], np.int64)
    (text,) = _run(graphs.load(tmp_path / "text.onnx"), input_ids=ids, attention_mask=mask)
    np.testing.assert_allclose(text, tiny.embed_texts(texts), atol=1e-6)

    images = [Image.new("RGB", (30, 20), colour) for colour in ("red", "navy", "gold")]
    pixels = np.stack([tiny.preprocess(image) for image in images])  # (n, 256, 3)
    chw = pixels.reshape(-1, 16, 16, 3).transpose(0, 3, 1, 2).copy()
    joint, visual = _run(graphs.load(tmp_path / "image.onnx"), pixels=chw)
    expected = tiny.embed_arrays(pixels)
    np.testing.assert_allclose(joint, expected.joint, atol=1e-6)
    np.testing.assert_allclose(visual, expected.visual, atol=1e-6)
