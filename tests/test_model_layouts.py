"""Model folders a user can bring: Immich's ONNX layout (OpenCLIP, SigLIP and multilingual
flavours), Hugging Face folders, and ``ORG/NAME`` from a Hugging Face cache, each built
here as a tiny random model; bad folders are refused with one line naming the file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import solid_photo, tiny_clip_model
from PIL import Image
from test_encoders import _tiny_clip_tokenizer, cosines

from picsearch.cli import main
from picsearch.encoders import load_encoder
from picsearch.encoders.model_checks import ALLOW_PICKLE_ENV
from picsearch.errors import InvalidInput

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnx")
pytest.importorskip("huggingface_hub")

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SIZE, TOKENS = 32, 16


# --------------------------------------------------------------- tiny models


def _features(output):
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class _Text(torch.nn.Module):
    """Immich's text graph: token ids (int32) in, L2-normalised embedding out."""

    def __init__(self, model, with_mask: bool) -> None:
        super().__init__()
        self.model, self.with_mask = model, with_mask

    def forward(self, ids, mask=None):
        mask = mask.long() if self.with_mask else None
        features = self.model.get_text_features(input_ids=ids.long(), attention_mask=mask)
        return torch.nn.functional.normalize(_features(features), dim=-1)


class _Vision(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image):
        features = self.model.get_image_features(pixel_values=image)
        return torch.nn.functional.normalize(_features(features), dim=-1)


def _export(module, args, path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=names, output_names=["embedding"],
            opset_version=17, dynamo=False,
        )  # fmt: skip


def _tiny_clip():
    tokenizer, vocab = _tiny_clip_tokenizer()
    eos = vocab["<|endoftext|>"]
    model = tiny_clip_model(vocab_size=len(vocab), bos=vocab["<|startoftext|>"], eos=eos, pad=eos)
    return model, tokenizer


def _tiny_siglip():
    tokenizer, vocab = _tiny_clip_tokenizer()
    layers = {"hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 2}
    config = transformers.SiglipConfig(
        text_config={
            **layers, "num_attention_heads": 2, "vocab_size": len(vocab),
            "max_position_embeddings": TOKENS, "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={**layers, "num_attention_heads": 2, "image_size": SIZE, "patch_size": 8},
    )  # fmt: skip
    torch.manual_seed(1)
    return transformers.SiglipModel(config).eval(), tokenizer


def write_immich(folder: Path, model, tokenizer, flavour: str) -> Path:
    """``model`` in Immich's layout: "clip" (OpenCLIP), "siglip" or "multilingual"."""
    siglip = flavour == "siglip"
    dim = 24 if siglip else 16
    text_cfg: dict = {"context_length": TOKENS, "vocab_size": tokenizer.vocab_size}
    if siglip:
        text_cfg["tokenizer_kwargs"] = {"clean": "canonicalize"}
    config = {"embed_dim": dim, "vision_cfg": {"image_size": SIZE}, "text_cfg": text_cfg}
    (folder / "visual").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    preprocess = {
        "size": [SIZE, SIZE], "mode": "RGB", "interpolation": "bicubic", "fill_color": 0,
        "mean": [0.5] * 3 if siglip else CLIP_MEAN, "std": [0.5] * 3 if siglip else CLIP_STD,
        "resize_mode": "squash" if siglip else "shortest",
    }  # fmt: skip
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    _export(
        _Vision(model), (torch.randn(1, 3, SIZE, SIZE),), folder / "visual/model.onnx", ["image"]
    )
    ids = torch.ones(1, TOKENS, dtype=torch.int32)
    if flavour == "multilingual":
        names, args = ["input_ids", "attention_mask"], (ids, torch.ones_like(ids))
    else:
        names, args = ["text"], (ids,)
    _export(_Text(model, flavour == "multilingual"), args, folder / "textual/model.onnx", names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer.save_pretrained(folder / "textual")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny CLIP and SigLIP, as a Hugging Face folder and in Immich's three flavours."""
    root = tmp_path_factory.mktemp("models")
    clip, tokenizer = _tiny_clip()
    siglip, _ = _tiny_siglip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clip.save_pretrained(root / "hf-clip")
        tokenizer.save_pretrained(root / "hf-clip")
        transformers.CLIPImageProcessor(
            size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
        ).save_pretrained(root / "hf-clip")
    return {
        "torch": {"clip": clip, "siglip": siglip, "multilingual": clip},
        "tokenizer": tokenizer,
        "hf-clip": root / "hf-clip",
        "clip": write_immich(root / "ViT-tiny__test", clip, tokenizer, "clip"),
        "siglip": write_immich(root / "ViT-tiny-SigLIP__test", siglip, tokenizer, "siglip"),
        "multilingual": write_immich(root / "XLM-tiny__test", clip, tokenizer, "multilingual"),
    }


def photos(folder: Path) -> Path:
    for colour in ("red", "green", "blue"):
        solid_photo(folder / f"{colour}.jpg", colour)
    return folder


def immich_pixels(image: Image.Image, size: int, squash: bool, mean, std) -> np.ndarray:
    """Immich's own preprocessing, written out as its code does it."""
    if squash:
        image = image.resize((size, size), resample=Image.Resampling.BICUBIC)
    else:
        if image.width < image.height:
            shape = (size, int((image.height / image.width) * size))
        else:
            shape = (int((image.width / image.height) * size), size)
        image = image.resize(shape, resample=Image.Resampling.BICUBIC)
        left, top = int(image.size[0] / 2 - size / 2), int(image.size[1] / 2 - size / 2)
        image = image.crop((left, top, left + size, top + size))
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return ((pixels - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)


# -------------------------------------------------------------------- parity


@pytest.mark.parametrize("flavour", ["clip", "siglip", "multilingual"])
def test_immich_folders_match_pytorch(models, flavour):
    from picsearch.encoders.immich import ImmichEncoder

    encoder = load_encoder(f"clip:{models[flavour]}")
    assert isinstance(encoder, ImmichEncoder)
    model, tokenizer = models["torch"][flavour], models["tokenizer"]
    texts = ["a cat", "Two DOGS,  playing!", "a cat and a dog sat on the mat all day long"]
    cleaned = [" ".join(t.split()) for t in texts]
    if flavour == "siglip":
        cleaned = [t.translate(str.maketrans("", "", "!,")).lower() for t in cleaned]
    feed = tokenizer(cleaned, padding="max_length", max_length=TOKENS, truncation=True)
    ids = torch.tensor(feed["input_ids"])
    mask = torch.tensor(feed["attention_mask"]) if flavour == "multilingual" else None
    with torch.inference_mode():
        want = _features(model.get_text_features(input_ids=ids, attention_mask=mask)).numpy()
    got = encoder.embed_texts(texts)
    assert got.shape == (3, encoder.dim) and cosines(want, got).min() >= 0.9999

    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)) for h, w in ((48, 80), (70, 33))
    ]
    squash = flavour == "siglip"
    mean, std = ([0.5] * 3, [0.5] * 3) if squash else (CLIP_MEAN, CLIP_STD)
    pixels = np.stack([immich_pixels(im, SIZE, squash, mean, std) for im in images])
    np.testing.assert_allclose(
        np.stack([encoder.preprocess(im) for im in images]), pixels, atol=1e-4
    )
    with torch.inference_mode():
        want = _features(model.get_image_features(pixel_values=torch.from_numpy(pixels))).numpy()
    assert cosines(want, encoder.embed_images(images).joint).min() >= 0.9999


def test_immich_search_needs_no_torch(models):
    """Search time imports neither torch nor transformers with an Immich folder."""
    code = (
        "import sys; from picsearch.encoders import load_encoder\n"
        f"e = load_encoder('clip:{models['clip']}')\n"
        "print(e.embed_texts(['a cat']).shape)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "(1, 16)" in run.stdout


# ------------------------------------------------------------ the hub's cache


def into_hub_cache(hub: Path, repo_id: str, source: Path, revision: str = "0" * 40) -> Path:
    """``source``'s files as the Hugging Face hub caches a download: blobs by digest,
    a snapshot of links to them, and refs/main naming the revision."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


@pytest.fixture
def hub(models, tmp_path, monkeypatch):
    """A Hugging Face cache (HF_HOME) holding a Hugging Face CLIP folder, an Immich folder
    and a model of another kind; offline, as every test is."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hf" / "hub"
    into_hub_cache(cache, "test-org/tiny-clip", models["hf-clip"])
    into_hub_cache(cache, "immich-test/ViT-tiny__test", models["clip"])
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    into_hub_cache(cache, "test-org/bert", other)
    return cache


def test_cache_models_load_by_id_and_are_listed(hub, models, capsys):
    by_id = load_encoder("clip:immich-test/ViT-tiny__test")
    by_folder = load_encoder(f"clip:{models['clip']}")
    assert by_id.model_id.startswith("immich:immich-test--ViT-tiny__test-")
    assert cosines(by_id.embed_texts(["a cat"]), by_folder.embed_texts(["a cat"]))[0] >= 0.9999
    assert load_encoder("clip:test-org/tiny-clip").model_id.startswith("clip:test-org--tiny-clip-")

    assert main(["models", "--json"]) == 0
    listed = {entry["spec"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"default", "clip:test-org/tiny-clip", "clip:immich-test/ViT-tiny__test"}
    assert listed["default"]["dim"] == 384 and listed["default"]["layout"] == "built in"
    immich, hf = listed["clip:immich-test/ViT-tiny__test"], listed["clip:test-org/tiny-clip"]
    assert (immich["layout"], immich["dim"], hf["layout"], hf["dim"]) == (
        "immich",
        16,
        "huggingface clip",
        16,
    )
    on_disk = sum(f.stat().st_size for f in models["clip"].rglob("*") if f.is_file())
    assert immich["size_bytes"] == on_disk
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "layout", "dim", "size"]
    assert any(line.startswith("clip:immich-test/ViT-tiny__test") for line in lines)


def test_nothing_is_downloaded_implicitly(hub, tmp_path, capsys):
    folder = photos(tmp_path / "photos")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(folder), "--db", db, "--model", "clip:nobody/nothing"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not in the Hugging Face cache" in err
    assert "picsearch models pull nobody/nothing" in err


def test_models_pull_offline(hub, capsys):
    """Pulling what the cache holds needs no network; what it lacks fails in one line."""
    assert main(["models", "pull", "immich-test/ViT-tiny__test"]) == 0
    assert capsys.readouterr().out.strip() == "clip:immich-test/ViT-tiny__test"
    for argv, message in [
        (["models", "pull", "nobody/nothing"], "nobody/nothing: could not download"),
        (["models", "pull", "not an id"], "not a Hugging Face model id"),
        (["models", "pull"], "models pull needs a model id"),
        (["models", "pull", "test-org/bert"], "cannot use it (pickled weights were left"),
    ]:
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


# ---------------------------------------------------- everywhere a model is used


@pytest.mark.parametrize(
    "which", ["clip", "siglip", "multilingual", "cache:immich", "cache:huggingface"]
)
def test_index_and_search_from_the_command_line(hub, models, which, tmp_path, capsys):
    spec = {
        "cache:immich": "clip:immich-test/ViT-tiny__test",
        "cache:huggingface": "clip:test-org/tiny-clip",
    }.get(which) or f"clip:{models[which]}"
    folder = photos(tmp_path / "photos")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(folder), "--db", db, "--model", spec, "-q"]) == 0
    assert "added 3" in capsys.readouterr().err
    assert main(["search", "--image", str(folder / "green.jpg"), "--db", db, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert Path(hits[0]["path"]).name == "green.jpg" and hits[0]["score"] > 0.999
    assert main(["search", "a red photo", "--db", db, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["info", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == spec


@pytest.mark.parametrize("flavour", ["clip", "siglip", "multilingual"])
def test_searcher_and_server_with_an_immich_model(models, flavour, tmp_path):
    import picsearch
    from picsearch import ImageSearcher, TextSearcher
    from picsearch.searcher.export import export_searcher

    folder = photos(tmp_path / "photos")
    with picsearch.open(tmp_path / "lib.db", model=f"clip:{models[flavour]}") as library:
        library.index([folder])
        export_searcher(library, tmp_path / "photos.searcher")
        texts = ["a RED photo,  please!", "green"]
        want = library.encoder.embed_texts(texts)
        encoder = library.encoder
    searcher = TextSearcher.create_from_file(tmp_path / "photos.searcher")
    got = np.stack([searcher.embed(text) for text in texts])
    assert cosines(want, got).min() >= 0.9999
    assert len(searcher.search("red").nearest_neighbors) == 3
    images = ImageSearcher.create_from_file(tmp_path / "photos.searcher")
    odd = Image.fromarray(np.random.default_rng(2).integers(0, 255, (32, 45, 3), np.uint8))
    assert cosines(images.embed(odd)[None], encoder.embed_images([odd]).joint)[0] >= 0.9999
    found = images.search(str(folder / "blue.jpg")).nearest_neighbors
    assert Path(found[0].path).name == "blue.jpg"

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from picsearch.server import create_app

    app = create_app(tmp_path / "lib.db", thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.get("/api/search", params={"q": "red", "k": 2})
        assert response.status_code == 200 and len(response.json()["hits"]) == 2
        with open(folder / "blue.jpg", "rb") as photo:
            sent = {"file": ("blue.jpg", photo, "image/jpeg")}
            response = client.post("/api/search/image?k=3", files=sent)
        assert response.status_code == 200, response.text
        assert Path(response.json()["hits"][0]["path"]).name == "blue.jpg"


# --------------------------------------------------------------- bad folders


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _break(folder: Path, how: str, models) -> None:
    """Spoil a copy of a good Immich folder in one way."""
    if how.startswith("no "):
        (folder / how[3:]).unlink()
    elif how == "wrong embed_dim":
        _edit_json(folder / "config.json", embed_dim=8)
    elif how == "wrong size":
        _edit_json(folder / "visual/preprocess_cfg.json", size=[64, 64])
    elif how == "wrong context_length":
        _edit_json(folder / "config.json", text_cfg={"context_length": 20})
    elif how == "visual graph as text":
        shutil.copy(folder / "visual/model.onnx", folder / "textual/model.onnx")
    elif how == "garbage graph":
        (folder / "visual/model.onnx").write_bytes(b"not a graph" * 10)
    elif how == "unknown resize_mode":
        _edit_json(folder / "visual/preprocess_cfg.json", resize_mode="letterbox")
    elif how == "unknown pad_token":
        _edit_json(folder / "textual/tokenizer_config.json", pad_token="<never>")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no config.json", "config.json: missing; expected an Immich CLIP model folder"),
        ("no textual/model.onnx", "textual/model.onnx: missing"),
        ("no textual/tokenizer.json", "textual/tokenizer.json: missing"),
        ("no textual/tokenizer_config.json", "textual/tokenizer_config.json: missing"),
        ("no visual/preprocess_cfg.json", "visual/preprocess_cfg.json: missing"),
        ("wrong embed_dim", "visual/model.onnx: gives 16-d vectors, not the 8 of config.json"),
        ("wrong size", "visual/model.onnx: takes ['image [1, 3, 32, 32] tensor(float)'], not one"),
        ("wrong context_length", "textual/model.onnx: input text takes [1, 16] tokens, not the 20"),
        ("visual graph as text", "textual/model.onnx: takes ['image tensor(float)'], not integer"),
        ("garbage graph", "visual/model.onnx: not a readable ONNX model"),
        ("unknown resize_mode", "preprocess_cfg.json: resize_mode 'letterbox' is not one of"),
        ("unknown pad_token", "tokenizer.json: has no token '<never>', the pad_token of"),
    ],
)
def test_bad_immich_folders_are_refused_in_one_line(models, how, message, tmp_path, capsys):
    folder = shutil.copytree(models["clip"], tmp_path / "model")
    _break(folder, how, models)
    photo_folder = photos(tmp_path / "photos")
    db = tmp_path / "lib.db"
    assert main(["index", str(photo_folder), "--db", str(db), "--model", f"clip:{folder}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("picsearch: error: "), err
    assert message in err and str(folder) in err, err
    with pytest.raises(InvalidInput, match="."):
        encoder = load_encoder(f"clip:{folder}")
        encoder.prepare_images()
        encoder.embed_texts(["a cat"])


def test_folders_of_no_known_layout(models, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="config.json: missing, and no visual/ nor textual/"):
        load_encoder(f"clip:{empty}")
    faces = tmp_path / "buffalo_l"  # an Immich face model: detection/ and recognition/
    (faces / "detection").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="not a model folder of a known layout"):
        load_encoder(f"clip:{faces}")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InvalidInput, match="'bert', not a CLIP-like model"):
        load_encoder(f"clip:{bert}")
    with pytest.raises(InvalidInput, match="clip:ORG/NAME"):
        load_encoder("clip: ")


def test_pickled_weights_load_only_when_allowed(models, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    folder = shutil.copytree(models["hf-clip"], tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    torch.save(models["torch"]["clip"].state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(InvalidInput, match=r"pytorch_model.bin: pickled weights are not loaded"):
        load_encoder(f"clip:{folder}")
    photo_folder = photos(tmp_path / "photos")
    index = ["index", str(photo_folder), "--db", str(tmp_path / "lib.db"), "-q"]
    assert main([*index, "--model", f"clip:{folder}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-pickle" in err
    assert main([*index, "--model", f"clip:{folder}", "--allow-pickle"]) == 0
    assert "added 3" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_spark_embeds_with_an_immich_model_from_the_cache(hub, tmp_path, capsys):
    """The spec travels to Spark's Python workers, which find the model in the same cache."""
    pytest.importorskip("pyspark")
    folder = photos(tmp_path / "photos")
    out, db = str(tmp_path / "emb"), str(tmp_path / "lib.db")
    spec = "clip:immich-test/ViT-tiny__test"
    embed = ["embed", str(folder), "--out", out, "--model", spec, "--concepts", "off"]
    assert main([*embed, "--engine", "spark", "--master", "local[1]"]) == 0, capsys.readouterr()
    assert main(["build", "--embeddings", out, "--db", db]) == 0
    capsys.readouterr()
    assert main(["search", "--image", str(folder / "red.jpg"), "--db", db, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert Path(hits[0]["path"]).name == "red.jpg" and hits[0]["score"] > 0.999
    assert main(["info", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == spec


def test_models_without_huggingface_hub_lists_the_default(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert main(["models", "--json"]) == 0
    captured = capsys.readouterr()
    assert [entry["spec"] for entry in json.loads(captured.out)] == ["default"]
    assert "pip install 'picsearch[clip]'" in captured.err
    folder = photos(tmp_path / "photos")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(folder), "--db", db, "--model", "clip:some-org/some-model"]) == 1
    assert "needs the 'huggingface_hub' package" in capsys.readouterr().err
