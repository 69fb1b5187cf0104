"""TensorFlow Lite searchers: what picsearch writes, opened and searched by the real Task
Library (tflite-support 0.4.4, in the venv ``make tflite-env`` builds).

The tests that convert and search need the two converter venvs; without them they skip
and say how to build them (CI builds them: ``make test-tflite``). The rest run anywhere.
A tiny randomly initialised CLIP with a BERT WordPiece tokenizer stands in for a real
model: the Task Library's text path tokenizes BERT-style only, and it converts in seconds.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_clip_model
from PIL import Image

import picsearch
from picsearch.cli import main
from picsearch.errors import InvalidInput
from picsearch.searcher import ImageSearcher, TextSearcher, export_searcher
from picsearch.tflite import ConversionFailed, ConverterEnv, ScannOptions, find_env
from picsearch.tflite.env import default_env_folder
from picsearch.tflite.index import build_index, check_file_size, item_metadata
from picsearch.tflite.models import text_for_tflite, write_vocab
from picsearch.tflite.query import task_library_search

# Read before the autouse fixture moves HOME: where `make tflite-env` put the venvs.
ENV_FOLDER = default_env_folder()
WORDS = "red blue green yellow white black cat dog sky sea tree car house photo".split()
TEXT_QUERIES = [
    "a red cat", "a blue sky", "the green tree", "a yellow car", "a white house",
    "a black dog", "photo of the sea", "a red car", "blue sea", "a green house",
    "yellow cat", "white dog on the sea", "black car", "a tree in the sky", "red and blue",
    "a photo", "the dog and the cat", "green", "white sky", "a black house with a red car",
]  # fmt: skip


def converter_env() -> ConverterEnv:
    try:
        return find_env(ENV_FOLDER)
    except picsearch.PicsearchError as exc:
        pytest.skip(f"{exc} (CI builds it: make test-tflite)")


def bert_clip_folder(folder: Path) -> Path:
    """A tiny random CLIPModel whose tokenizer is BERT WordPiece: [CLS] text [SEP], the
    text vector read at [SEP] (its eos token), as the Task Library tokenizes."""
    transformers = pytest.importorskip("transformers")
    letters = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in ("a",)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "an", "the", "of", "on", "in"]
    vocab += ["with", "and", *WORDS, *letters, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]
    ids = {token: i for i, token in enumerate(vocab)}
    model = tiny_clip_model(vocab_size=len(vocab), bos=ids["[CLS]"], eos=ids["[SEP]"], pad=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(folder)
        transformers.BertTokenizerFast(vocab=ids, do_lower_case=True).save_pretrained(folder)
        transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ).save_pretrained(folder)
    return folder


def blocks_photo(path: Path, seed: int) -> None:
    """A photo of four coloured blocks at the model's input size, 32 x 32: the Task
    Library resizes a photo whole (bilinear) where picsearch resizes its short side
    (bicubic) and crops the centre; at the input size neither changes a pixel."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((32, 32, 3), np.uint8)
    for top in (0, 16):
        for left in (0, 16):
            pixels[top : top + 16, left : left + 16] = rng.integers(0, 256, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def bert_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bert_clip_folder(tmp_path_factory.mktemp("bert-clip"))


@pytest.fixture
def clip_library(bert_clip: Path, tmp_path: Path) -> picsearch.Library:
    photos = tmp_path / "photos"
    for i in range(60):
        blocks_photo(photos / f"p{i:02d}.png", seed=i)
    library = picsearch.open(tmp_path / "clip.db", model=f"clip:{bert_clip}")
    library.index([photos], concepts="off")
    return library


def recall(theirs: list[list[int]], ours: list[list[int]]) -> float:
    found = sum(len(set(t) & set(o)) for t, o in zip(theirs, ours, strict=True))
    return found / sum(len(o) for o in ours)


def ids_of(answer: dict) -> list[list[int]]:
    return [[json.loads(n["metadata"])["id"] for n in found] for found in answer["results"]]


# -- with the converter venvs: the real Task Library ----------------------------------


def test_task_library_opens_and_searches_both_files(
    clip_library: picsearch.Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = converter_env()
    monkeypatch.setenv("PICSEARCH_TFLITE_ENV", str(env.folder))
    out = tmp_path / "tflite"
    assert main(["export", "--db", str(clip_library.path), "--format", "tflite"]
                + ["-o", str(out), "--json"]) == 0  # fmt: skip
    ours_file = tmp_path / "clip.searcher"
    export_searcher(clip_library, ours_file)
    texts = TextSearcher.create_from_file(ours_file)
    images = ImageSearcher.create_from_file(ours_file)

    answer = task_library_search(out / "text_searcher.tflite", TEXT_QUERIES, kind="text", env=env)
    ours = [[n.id for n in texts.search(q, k=5).nearest_neighbors] for q in TEXT_QUERIES]
    text_recall = recall(ids_of(answer), ours)
    print(f"float, text: recall@5 {text_recall:.2f}", file=sys.stderr)
    assert text_recall >= 0.95
    first = answer["results"][0][0]
    item = json.loads(first["metadata"])
    assert Path(item["path"]).name.startswith("p") and item["size"] > 0
    # The Task Library's distance of a dot-product index is minus the cosine.
    top = texts.search(TEXT_QUERIES[0], k=1).nearest_neighbors[0]
    assert -first["distance"] == pytest.approx(top.score, abs=1e-3)

    paths = sorted(str(p) for p in (tmp_path / "photos").glob("*.png"))[:20]
    answer = task_library_search(out / "image_searcher.tflite", paths, kind="image", env=env)
    ours = [[n.id for n in images.search(p, k=5).nearest_neighbors] for p in paths]
    image_recall = recall(ids_of(answer), ours)
    print(f"float, image: recall@5 {image_recall:.2f}", file=sys.stderr)
    assert image_recall >= 0.95
    # Each photo finds itself first.
    firsts = [json.loads(found[0]["metadata"])["path"] for found in answer["results"]]
    assert firsts == paths


def test_cli_product_quantization_and_one_field(
    clip_library: picsearch.Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Product quantization is approximate: its recall is printed, with a low floor."""
    env = converter_env()
    monkeypatch.setenv("PICSEARCH_TFLITE_ENV", str(env.folder))
    out = tmp_path / "pq"
    flags = ["--tflite-only", "text", "--tflite-pq", "--tflite-metadata", "path"]
    assert main(["export", "--db", str(clip_library.path), "--format", "tflite", "-o",
                 str(out), "--json", *flags]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert set(report["files"]) == {"text"} and report["options"]["product_quantization"]
    assert not (out / "image_searcher.tflite").exists()
    answer = task_library_search(out / "text_searcher.tflite", TEXT_QUERIES, kind="text", env=env)
    by_path = {str(clip_library.get(int(i)).path): int(i) for i in clip_library.ids()}
    theirs = [[by_path[n["metadata"].decode()] for n in found] for found in answer["results"]]
    ours = [[h.id for h in clip_library.search(q, k=5)] for q in TEXT_QUERIES]
    pq_recall = recall(theirs, ours)
    print(f"product quantization (2 dims per block): recall@5 {pq_recall:.2f}", file=sys.stderr)
    assert pq_recall >= 0.5


def test_converter_failure_quotes_its_stderr(tmp_path: Path) -> None:
    env = converter_env()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    job = tmp_path / "convert.json"
    entry = {"onnx": str(broken), "tflite": str(tmp_path / "x.tflite"), "image": False}
    job.write_text(json.dumps({"models": [entry]}))
    with pytest.raises(ConversionFailed, match="converting 'x' failed: .*broken.onnx") as caught:
        env.run("convert", "convert_job", str(job), doing="converting 'x'")
    assert "\n" not in str(caught.value)


# -- anywhere --------------------------------------------------------------------------


def test_missing_environment_names_the_command(tmp_path: Path, capsys) -> None:
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        blocks_photo(tmp_path / "photos" / "a.png", seed=1)
        library.index([tmp_path / "photos"], concepts="off")
    missing = tmp_path / "no-env"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PICSEARCH_TFLITE_ENV", str(missing))
        code = main(["export", "--db", str(tmp_path / "lib.db"), "--format", "tflite",
                     "-o", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "make tflite-env" in err and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_empty_library_and_misplaced_options(tmp_path: Path, capsys) -> None:
    picsearch.open(tmp_path / "empty.db", model="tiny").close()
    db = str(tmp_path / "empty.db")
    assert main(["export", "--db", db, "--format", "tflite", "-o", str(tmp_path / "o")]) == 1
    assert "is empty: index some photos" in capsys.readouterr().err
    assert main(["export", "--db", db, "-o", str(tmp_path / "o"), "--tflite-pq"]) == 1
    assert "--tflite-pq go with --format tflite" in capsys.readouterr().err


def test_only_wordpiece_tokenizers_convert(tmp_path: Path) -> None:
    """The tiny colour model's word-level tokenizer and CLIP's byte-level BPE have no
    Task Library equivalent: refused, naming the way to the image searcher alone."""
    from tokenizers import Tokenizer, models

    from picsearch.encoders.tiny import TinyEncoder

    TinyEncoder().export_query_model(tmp_path)
    with pytest.raises(InvalidInput, match="WordLevel: the Task Library's text searcher"):
        write_vocab(tmp_path / "tokenizer.json", tmp_path / "vocab.txt", model="tiny")
    bpe = tmp_path / "bpe.json"
    Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2}, [("a", "b")])).save(str(bpe))
    with pytest.raises(InvalidInput, match="with BPE: .* --tflite-only image"):
        write_vocab(bpe, tmp_path / "vocab.txt", model="clip:x")
    assert not (tmp_path / "vocab.txt").exists()


def test_text_graph_takes_three_int32_inputs_and_keeps_its_vectors(
    bert_clip: Path, tmp_path: Path
) -> None:
    """The reshaped text graph, fed as the Task Library feeds it, gives picsearch's vectors."""
    ort = pytest.importorskip("onnxruntime")
    from tokenizers import Tokenizer

    from picsearch.encoders import load_encoder

    encoder = load_encoder(f"clip:{bert_clip}")
    encoder.export_query_model(tmp_path)  # type: ignore[attr-defined]
    write_vocab(tmp_path / "tokenizer.json", tmp_path / "vocab.txt", model="clip")
    assert (tmp_path / "vocab.txt").read_text().split("\n")[:4] == ["[PAD]", "[UNK]", "[CLS]",
                                                                    "[SEP]"]  # fmt: skip
    text_for_tflite(tmp_path / "text.onnx", tmp_path / "t.onnx", tokens=16, model="clip")
    session = ort.InferenceSession(str(tmp_path / "t.onnx"))
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    assert inputs == {n: ("tensor(int32)", [1, 16]) for n in ("input_ids", "attention_mask",
                                                              "segment_ids")}  # fmt: skip
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in TEXT_QUERIES[:5]:
        ids = tokenizer.encode(text).ids
        feed = np.zeros((3, 1, 16), np.int32)
        feed[0, 0, : len(ids)], feed[1, 0, : len(ids)] = ids, 1
        names = ("input_ids", "attention_mask", "segment_ids")
        (got,) = session.run(None, dict(zip(names, feed, strict=True)))
        np.testing.assert_allclose(got[0], encoder.embed_texts([text])[0], atol=1e-5)


def test_index_partitions_every_item_and_quantizes() -> None:
    assert ScannOptions().checked(items=100_000, dim=8).partitions_to_search == 16
    assert ScannOptions().checked(items=10_000, dim=8).partitions_to_search == 50
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    options = ScannOptions(product_quantization=True, dims_per_block=4, partitions_to_search=4)
    options = options.checked(items=500, dim=16)
    assert (options.partitions, options.partitions_to_search) == (22, 4)
    arrays = build_index(vectors, options)
    assert arrays.assignment.shape == (500,) and set(arrays.assignment) <= set(range(22))
    assert len(set(arrays.assignment)) > 11  # the leaves are used, not one big leaf
    assert arrays.codebooks is not None and arrays.codebooks.shape == (4, 16, 4)
    assert arrays.codes is not None and arrays.codes.shape == (500, 4)
    decoded = np.concatenate([arrays.codebooks[b][arrays.codes[:, b]] for b in range(4)], axis=1)
    assert np.mean(np.sum(decoded * vectors, axis=1)) > 0.7  # codes approximate the vectors


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ScannOptions(partitions=600), "partitions=600 must be between 1 and the item count"),
        (ScannOptions(partitions_to_search=30), "partitions_to_search=30 must be between 1"),
        (ScannOptions(product_quantization=True, dims_per_block=5), "dims_per_block=5 must"),
        (ScannOptions(distance="cosine"), "distance 'cosine' is not one of"),
    ],
)
def test_options_refused_with_the_reason(options: ScannOptions, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        options.checked(items=500, dim=16)


def test_metadata_json_or_one_field_and_its_size_limit() -> None:
    items = [{"id": 1, "path": "/a.jpg", "size": 3, "tag": "x"}, {"id": 2, "path": "/b.jpg"}]
    blob, offsets = item_metadata(items, field=None)
    assert [json.loads(blob[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)] == items
    blob, offsets = item_metadata(items, field="tag")
    assert (blob, offsets.tolist()) == (b"x", [0, 1, 1])
    with pytest.raises(InvalidInput, match="no item has a metadata field 'colour': pick one of"):
        item_metadata(items, field="colour")
    check_file_size("text", model_bytes=10, index_bytes=10, metadata_bytes=10)
    with pytest.raises(InvalidInput, match="holds under 2 GiB; keep one field"):
        check_file_size("text", model_bytes=10, index_bytes=2**30, metadata_bytes=2**30)
