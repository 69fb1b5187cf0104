"""Training a dual encoder on a tiny generated captioned set, and using it everywhere.

The base is the real default model (slow: exported to ONNX once per session);
the captioned set is 96 coloured shapes. The parts that need no base encoder
(readers, metrics, the heads' ONNX graphs) run without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import picsearch
from picsearch.cli import main
from picsearch.encoders import load_encoder
from picsearch.errors import InvalidInput, ModelMismatch
from picsearch.train import FeatureStore, TrainOptions, read_captions, train
from picsearch.train.evaluate import (
    average_precision,
    caption_ranks,
    class_query,
    evaluate_model,
    image_ranks,
    recall_at,
)

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 60, 220),
    "yellow": (235, 210, 30),
}
SHAPES = ("circle", "square", "triangle")
FAST = TrainOptions(epochs=12, batch_size=32, patience=12, dim=64, seed=0)


def shape_image(colour: str, shape: str, rng: np.random.Generator) -> Image.Image:
    grey = int(rng.integers(200, 250))
    image = Image.new("RGB", (96, 96), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    r = float(rng.uniform(18, 34))
    x, y = rng.uniform(r, 96 - r, 2)
    box = (x - r, y - r, x + r, y + r)
    if shape == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        draw.rectangle(box, fill=COLOURS[colour])
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=COLOURS[colour])
    return image


def write_set(root: Path, split: str, per_type: int, seed: int) -> Path:
    """COCO captions of ``per_type`` images of each colour-shape pair (labels included)."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for colour in COLOURS:
        for shape in SHAPES:
            for _ in range(per_type):
                i = len(images)
                name = f"{split}/{colour}-{shape}-{i}.png"
                shape_image(colour, shape, rng).save(root / name)
                images.append({"id": i, "file_name": name, "label": f"{colour} {shape}"})
                template = ("a {} {}", "a picture of a {} {}")[i % 2]
                annotations.append({"image_id": i, "caption": template.format(colour, shape)})
    path = root / f"captions_{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    return {
        "root": root,
        "train": write_set(root, "train", 6, seed=1),
        "val": write_set(root, "val", 2, seed=2),
    }


@pytest.fixture(scope="module")
def cache(model_cache: Path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PICSEARCH_CACHE", str(model_cache))
        yield model_cache


@pytest.fixture(scope="module")
def trained(shapes, cache, tmp_path_factory: pytest.TempPathFactory):
    """A model trained for FAST.epochs on the train split, validated on the val split."""
    out = tmp_path_factory.mktemp("models") / "shapes"
    result = train(
        read_captions(shapes["train"]),
        val=read_captions(shapes["val"]),
        output=out,
        options=FAST,
        progress=False,
    )
    return result


# --------------------------------------------------------------------- no base encoder


def test_metrics_count_ties_against_the_right_answer() -> None:
    image = np.eye(3, dtype=np.float32)
    text = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)  # last: all ties
    owners = np.array([0, 1, 2])
    ranks = caption_ranks(text, image, owners)
    assert list(ranks) == [0, 0, 2]
    assert recall_at(ranks, 1) == pytest.approx(2 / 3)
    assert list(image_ranks(text, image, owners)) == [0, 0, 2]
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(
        (1 + 2 / 3) / 2
    )
    assert average_precision(np.zeros(4), np.array([1, 0, 0, 0])) == pytest.approx(0.25)
    assert class_query("a photo of a {label}", "ankle boot") == "a photo of an ankle boot"


def test_onnx_heads_match_the_torch_heads() -> None:
    import onnxruntime as ort
    import torch

    from picsearch.encoders.dual_format import head_graph
    from picsearch.train.heads import DualHeads, state_to_numpy

    torch.manual_seed(3)
    heads = DualHeads(text_dim=24, image_dim=40, dim=16, blocks=2).eval()
    with torch.no_grad():
        for parameter in heads.parameters():  # move LayerNorm off its identity start
            parameter.add_(0.1 * torch.randn_like(parameter))
    weights = state_to_numpy(heads)
    rng = np.random.default_rng(0)
    for side, width in (("text", 24), ("image", 40)):
        session = ort.InferenceSession(head_graph(weights, side).SerializeToString())
        x = rng.standard_normal((5, width)).astype(np.float32)
        got = session.run(None, {"features": x})
        want = getattr(heads, side)(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got[0], want, atol=1e-5)
        if side == "image":
            np.testing.assert_allclose(
                got[1], x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6
            )


def test_csv_and_jsonl_captions(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / "pics" / name)
    (tmp_path / "c.csv").write_text(
        "image_path,caption\npics/a.png,a cat\npics/b.png,  \npics/gone.png,a dog\n"
        "pics/a.png,another cat\n"
    )
    rows = [{"image_path": "a.png", "caption": "a cat", "label": "cat"}, {"image_path": "b.png"}]
    (tmp_path / "c.jsonl").write_text(json.dumps(rows[0]) + "\n\n")
    table = read_captions(tmp_path / "c.csv")
    assert [p.name for p in table.images] == ["a.png"]
    assert table.captions == ["a cat", "another cat"] and list(table.caption_image) == [0, 0]
    assert table.skipped == {
        "empty captions": 1,
        "missing image files": 1,
        "captions of missing images": 1,
    }
    lines = read_captions(tmp_path / "c.jsonl", images=tmp_path / "pics")
    assert lines.captions == ["a cat"] and lines.labels == ["cat"]


@pytest.mark.parametrize(
    ("name", "content", "field"),
    [
        ("c.json", {"images": []}, "'annotations' is missing"),
        ("c.json", {"images": {}, "annotations": []}, "'images' is not a list"),
        ("c.json", [1, 2], "top level is not an object"),
        (
            "c.json",
            {"images": [{"id": 1}], "annotations": []},
            "images[0] has no field 'file_name'",
        ),
        (
            "c.json",
            {"images": [], "annotations": [{"image_id": 1, "caption": "x"}, {"image_id": 1}]},
            "annotations[1] has no field 'caption'",
        ),
        (
            "c.json",
            {"images": [], "annotations": [{"image_id": 1, "caption": 7}]},
            "field 'caption' has the wrong type",
        ),
        ("c.csv", "path,text\na.png,a cat\n", "no column 'image_path'"),
        ("c.jsonl", '{"image_path": "a.png"}\n', "line 1 has no field 'caption'"),
        ("c.json", "{not json", "not valid JSON"),
    ],
)
def test_captions_file_of_the_wrong_shape_names_the_field(
    tmp_path: Path, name: str, content: object, field: str
) -> None:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InvalidInput, match=None) as error:
        read_captions(path)
    assert field in str(error.value) and str(path) in str(error.value)


def test_a_folder_that_is_not_a_trained_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="picsearch train"):
        load_encoder(f"dual:{tmp_path / 'missing'}")
    (tmp_path / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(InvalidInput, match="not a picsearch dual-encoder config"):
        load_encoder(f"dual:{tmp_path}")
    with pytest.raises(InvalidInput, match="needs a folder"):
        load_encoder("dual:")


def test_cli_reports_a_wrong_shape_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"annotations": []}))
    code = main(["train", "--captions", str(path), "-o", str(tmp_path / "m"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("picsearch: error:") and "'images'" in err
    assert err.count("\n") == 1


# --------------------------------------------------------------------- the real base


@pytest.mark.slow
def test_training_learns_the_captions(trained, shapes, cache) -> None:
    history = trained.history
    assert history[-1]["loss"] < history[0]["loss"] * 0.7
    val = read_captions(shapes["val"])
    dual = evaluate_model(f"dual:{trained.folder}", val, progress=False)
    default = evaluate_model("default", val, progress=False)
    chance = 5 / len(val.images)
    assert dual.text_to_image[5] > 2 * chance
    assert dual.class_map > 0.8 and dual.class_map > default.class_map + 0.2
    assert dual.images == 24 and dual.captions == 24
    config = json.loads((trained.folder / "config.json").read_text())
    assert config["base"]["model"] == "default" and config["dim"] == FAST.dim
    assert config["metrics"]["best_epoch"] == trained.best_epoch


def model_id(folder: Path) -> str:
    """The id of the model in ``folder`` as it is now (load_encoder caches by spec)."""
    from picsearch.encoders.dual import DualEncoder

    return DualEncoder(folder).model_id


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.mark.slow
def test_same_seed_same_model_and_resume_after_interruption(
    trained, shapes, cache, tmp_path: Path
) -> None:
    captions, val = read_captions(shapes["train"]), read_captions(shapes["val"])

    def stop_after_5(record: dict) -> None:
        if record["epoch"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            captions,
            val=val,
            output=tmp_path / "m",
            options=FAST,
            progress=False,
            on_epoch=stop_after_5,
        )
    epochs = []
    resumed = train(
        captions,
        val=val,
        output=tmp_path / "m",
        options=FAST,
        progress=False,
        on_epoch=lambda record: epochs.append(record["epoch"]),
    )
    assert epochs == list(range(6, FAST.epochs + 1))
    assert without_times(resumed.history) == without_times(trained.history)
    assert model_id(resumed.folder) == model_id(trained.folder)

    other = TrainOptions(**{**FAST.__dict__, "seed": 1})
    with pytest.raises(InvalidInput, match="--restart"):
        train(captions, val=val, output=tmp_path / "m", options=other, progress=False)
    train(captions, val=val, output=tmp_path / "m", options=other, progress=False, restart=True)
    assert model_id(tmp_path / "m") != model_id(trained.folder)


@pytest.mark.slow
def test_bad_entries_are_skipped_and_counted(shapes, cache, tmp_path: Path) -> None:
    data = json.loads(shapes["train"].read_text())
    root = shapes["root"]
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    data["images"] += [
        {"id": 900, "file_name": "broken.png"},
        {"id": 901, "file_name": "nowhere.png"},
    ]
    data["annotations"] += [
        {"image_id": 900, "caption": "a broken picture"},
        {"image_id": 901, "caption": "a missing picture"},
        {"image_id": 999, "caption": "a caption for no image"},
        {"image_id": 0, "caption": "   "},
    ]
    path = root / "captions_bad.json"
    path.write_text(json.dumps(data))
    options = TrainOptions(epochs=1, batch_size=32, dim=16)
    result = train(
        read_captions(path),
        val=read_captions(shapes["val"]),
        output=tmp_path / "m",
        options=options,
        progress=False,
    )
    assert result.skipped == {
        "captions for unknown image ids": 1,
        "empty captions": 1,
        "missing image files": 1,
        "captions of missing images": 1,
        "unusable images": 1,
    }
    assert result.pairs == 72


@pytest.mark.slow
def test_index_search_and_refuse_another_model(trained, shapes, cache, tmp_path: Path) -> None:
    spec = f"dual:{trained.folder}"
    with picsearch.open(tmp_path / "lib.db", model=spec) as lib:
        summary = lib.index(shapes["root"] / "val")
        assert summary.added == 24 and not summary.skipped
        for query in ("a blue triangle", "a yellow circle", "a red square"):
            hits = lib.search(query, k=2)
            assert all(query[2:].replace(" ", "-") in Path(h.path).name for h in hits), query
        copy = sorted((shapes["root"] / "val").glob("green-square-*.png"))[0]
        assert Path(lib.search(image=copy, k=1)[0].path).name == copy.name
        assert lib.info().dims == {"joint": FAST.dim, "visual": 1280}
    with pytest.raises(ModelMismatch):
        picsearch.open(tmp_path / "lib.db", model="default")


@pytest.mark.slow
def test_query_model_export_matches_the_encoder(trained, shapes, cache, tmp_path: Path) -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    encoder = load_encoder(f"dual:{trained.folder}")
    description = encoder.export_query_model(tmp_path)
    assert description["image"]["outputs"] == ["joint", "visual"]
    texts = ["a red circle", "a picture of a green triangle on a grey background", "x"]
    encoded = Tokenizer.from_file(str(tmp_path / description["text"]["tokenizer"])).encode_batch(
        texts
    )
    feed = {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
    }
    (text,) = ort.InferenceSession(str(tmp_path / "text.onnx")).run(["embedding"], feed)
    assert np.min(np.sum(text * encoder.embed_texts(texts), axis=1)) >= 0.9999
    images = [Image.open(p) for p in sorted((shapes["root"] / "val").glob("*.png"))[:3]]
    pixels = np.stack([encoder.preprocess(image) for image in images])
    joint, visual = ort.InferenceSession(str(tmp_path / "image.onnx")).run(
        ["joint", "visual"], {"pixels": pixels}
    )
    want = encoder.embed_arrays(pixels)
    assert np.min(np.sum(joint * want.joint, axis=1)) >= 0.9999
    assert np.min(np.sum(visual * want.visual, axis=1)) >= 0.9999


@pytest.mark.slow
def test_a_warm_dual_encoder_does_not_import_torch(trained, cache) -> None:
    script = (
        "import sys\n"
        "from PIL import Image\n"
        "from picsearch.encoders import load_encoder\n"
        f"encoder = load_encoder({f'dual:{trained.folder}'!r})\n"
        "encoder.embed_texts(['a red circle'])\n"
        "encoder.embed_images([Image.new('RGB', (64, 64), 'red')])\n"
        "print('torch' in sys.modules, 'picsearch.train.heads' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PICSEARCH_CACHE": str(cache)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_cli_train_then_eval(shapes, cache, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli-model"
    code = main(
        [
            "train",
            "--captions",
            str(shapes["train"]),
            "--val-captions",
            str(shapes["val"]),
            "-o",
            str(out),
            "--epochs",
            "3",
            "--dim",
            "32",
            "--batch-size",
            "32",
            "-q",
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0 and f"dual:{out}" in stdout
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "heads.npz",
        "text_head.onnx",
        "image_head.onnx",
    }
    code = main(
        [
            "eval",
            "--captions",
            str(shapes["val"]),
            "--model",
            f"dual:{out}",
            "--model",
            "default",
            "--json",
            "-q",
        ]
    )
    reports = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["model"] for r in reports] == [f"dual:{out}", "default"]
    assert set(reports[0]["text_to_image"]) == {"R@1", "R@5", "R@10"}
    assert reports[0]["images"] == 24 and reports[0]["class_map"] is not None
    assert main(["eval", "--captions", str(shapes["val"]), "-q"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["model", "images", "captions", "t2i"]
    assert table[1].split()[:3] == ["default", "24", "24"]


@pytest.mark.slow
def test_feature_cache_is_reused(shapes, cache) -> None:
    from picsearch.train import image_features

    store = FeatureStore()
    encoder = load_encoder("default")
    paths = [str(p) for p in sorted((shapes["root"] / "val").glob("*.png"))]
    first = image_features(paths, encoder=encoder, kinds=("visual",), store=store, progress=False)
    assert len(store.keys(encoder.model_id, "visual")) >= len(paths)
    calls = []
    original = encoder.embed_arrays
    encoder.embed_arrays = lambda batch: calls.append(len(batch)) or original(batch)
    try:
        again = image_features(
            paths, encoder=encoder, kinds=("visual",), store=store, progress=False
        )
    finally:
        del encoder.embed_arrays
    assert calls == [] and np.array_equal(first.vectors["visual"], again.vectors["visual"])


# --------------------------------------------------------------------- unfreezing MiniLM

UNFROZEN = TrainOptions(epochs=2, batch_size=16, patience=12, dim=32, seed=0, unfreeze_text=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"unfreeze_text": 7}, "unfreeze_text must be a whole number from 0 to 6"),
        ({"unfreeze_text": -1}, "unfreeze_text must be"),
        ({"unfreeze_text": 1.5}, "unfreeze_text must be"),
        ({"text_lr_scale": 0.0}, "text_lr_scale must be positive"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
    ],
)
def test_text_tower_options_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as error:
        TrainOptions(**changes).check()
    assert "\n" not in str(error.value)


def test_cuda_without_a_gpu_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    path = tmp_path / "c.csv"
    path.write_text("image_path,caption\na.png,a black square\n")
    with pytest.raises(InvalidInput, match="torch sees no CUDA GPU"):
        train(read_captions(path), output=tmp_path / "m", options=TrainOptions(device="cuda"))
    for flags in (["--device", "cuda"], ["--unfreeze-text", "9"]):
        code = main(["train", "--captions", str(path), "-o", str(tmp_path / "m"), "-q", *flags])
        err = capsys.readouterr().err
        assert code == 1 and err.startswith("picsearch: error:") and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def unfrozen(shapes, cache, tmp_path_factory: pytest.TempPathFactory):
    """A model whose last MiniLM layer trained with the heads (two epochs, on the CPU)."""
    out = tmp_path_factory.mktemp("models") / "unfrozen"
    return train(
        read_captions(shapes["train"]),
        val=read_captions(shapes["val"]),
        output=out,
        options=UNFROZEN,
        progress=False,
    )


def torch_text_tower(folder: Path):
    """The pretrained MiniLM with the folder's tuned layer loaded, its heads, and its weights."""
    import torch

    from picsearch.encoders.dual_format import load_weights
    from picsearch.train.heads import DualHeads, numpy_to_state
    from picsearch.train.text_tower import PREFIX, TextTower

    weights = load_weights(folder)
    tower = TextTower(torch, unfreeze=UNFROZEN.unfreeze_text)
    pretrained = tower.trainable_state()
    tower.load_trainable(TextTower.from_numpy(torch, weights))
    heads = DualHeads(text_dim=384, image_dim=1280, dim=UNFROZEN.dim).eval()
    numpy_to_state(heads, {k: v for k, v in weights.items() if not k.startswith(PREFIX)})
    return tower, heads, weights, pretrained


@pytest.mark.slow
def test_unfrozen_text_layer_trains_and_is_what_search_uses(
    unfrozen, shapes, cache, tmp_path: Path
) -> None:
    import torch

    from picsearch.encoders.dual import DualEncoder
    from picsearch.searcher import SearcherOptions, TextSearcher
    from picsearch.searcher.export import export_searcher
    from picsearch.train.text_tower import PREFIX

    folder = unfrozen.folder
    assert unfrozen.history[-1]["loss"] < unfrozen.history[0]["loss"]
    assert (folder / "text_base.onnx").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["unfreeze_text"] == 1 and config["text_base"]["parity"]["min_cosine"] >= 0.9999
    tower, heads, weights, pretrained = torch_text_tower(folder)
    tuned = {k[len(PREFIX) :] for k in weights if k.startswith(PREFIX)}
    assert tuned == set(pretrained) and all(k.startswith("model.encoder.layer.5.") for k in tuned)
    moved = [float((tower.trainable[k].detach() - pretrained[k]).abs().max()) for k in tuned]
    assert min(moved) > 0  # every tuned tensor changed (weight decay alone moves each)
    saved = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert set(saved["text"]) == tuned  # nothing else of MiniLM is trainable or saved

    # The folder's ONNX text base = pretrained frozen layers + the tuned layer, then the head.
    texts = ["a red circle", "a picture of a blue triangle", "something else entirely"]
    with torch.no_grad():
        want = heads.text(torch.from_numpy(tower.embed(texts))).numpy()
    encoder = DualEncoder(folder)
    assert encoder.own_text_base and encoder.model_id == load_encoder(f"dual:{folder}").model_id
    got = encoder.embed_texts(texts)
    assert np.min(np.sum(got * want, axis=1)) > 0.9999
    frozen_base = load_encoder("default").embed_texts(texts)
    tuned_base = encoder._tuned_base_texts(texts)
    assert np.min(np.sum(frozen_base * tuned_base, axis=1)) < 0.99999  # the tuned base differs

    with picsearch.open(tmp_path / "lib.db", model=f"dual:{folder}") as lib:
        assert lib.index(shapes["root"] / "val").added == 24
        queries = ["a blue triangle", "a yellow circle", "a picture of a red square"]
        hits = {q: lib.search(q, k=5) for q in queries}
        report = export_searcher(lib, tmp_path / "shapes.picsearch")
    assert report.text_recall_at_10 == 1.0
    searcher = TextSearcher.create_from_file(report.path, SearcherOptions(max_results=5))
    for query in queries:
        result = searcher.search(query)
        assert result.ids == [h.id for h in hits[query]], query
        scores = [n.score for n in result.nearest_neighbors]
        assert scores == pytest.approx([h.score for h in hits[query]], abs=1e-4)


@pytest.mark.slow
def test_unfrozen_run_resumes_to_the_same_weights(unfrozen, shapes, cache, tmp_path: Path) -> None:
    from picsearch.encoders.dual_format import load_weights

    captions, val = read_captions(shapes["train"]), read_captions(shapes["val"])

    def stop_after_1(record: dict) -> None:
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    out = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        train(
            captions, val=val, output=out, options=UNFROZEN, progress=False, on_epoch=stop_after_1
        )
    epochs = []
    resumed = train(
        captions,
        val=val,
        output=out,
        options=UNFROZEN,
        progress=False,
        on_epoch=lambda record: epochs.append(record["epoch"]),
    )
    assert epochs == [2]
    assert without_times(resumed.history) == without_times(unfrozen.history)
    mine, theirs = load_weights(out), load_weights(unfrozen.folder)
    assert sorted(mine) == sorted(theirs)
    assert all(np.array_equal(mine[name], theirs[name]) for name in mine)
    assert model_id(out) == model_id(unfrozen.folder)
