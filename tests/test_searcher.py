"""One-file searchers: export, query from Python and the CLI, and refuse damaged files."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import solid_photo
from PIL import Image

import picsearch
from picsearch import ImageSearcher, SearcherFileError, SearcherOptions, TextSearcher
from picsearch.cli import main
from picsearch.searcher.export import export_searcher

COLOURS = ["red", "green", "blue", "yellow", "white", "black", "purple", "orange"]


@pytest.fixture
def tiny_library(tmp_path: Path) -> picsearch.Library:
    folder = tmp_path / "photos"
    for i, colour in enumerate(COLOURS):
        solid_photo(folder / f"{colour}.jpg", colour, size=(40 + i, 30))
        solid_photo(folder / "more" / f"{colour}-2.png", colour, size=(30, 40 + i))
    library = picsearch.open(tmp_path / "lib.db", model="tiny")
    library.index(folder, metadata=lambda path: {"colour": Path(path).stem.split("-")[0]})
    yield library
    library.close()


@pytest.fixture
def tiny_searcher(tiny_library: picsearch.Library, tmp_path: Path) -> Path:
    report = export_searcher(tiny_library, tmp_path / "photos.searcher")
    assert report.text_recall_at_10 == 1.0 and report.text_same_order == 1.0
    # The tiny image model leaves near-tied scores at rank 10 of 16 photos, and
    # ONNX and PyTorch may break such a tie differently.
    assert report.image_recall_at_10 >= 0.98 and report.items == 16
    return tmp_path / "photos.searcher"


def assert_same_ranking(result, hits, *, tie: float = 1e-3) -> None:
    """Same ids in the same order, except that near-tied scores may swap places
    (the ONNX and PyTorch image paths differ by ~1e-4 in scores)."""
    assert len(result.ids) == len(hits)
    wanted = {h.id: h.score for h in hits}
    for got, hit in zip(result.nearest_neighbors, hits, strict=True):
        assert got.score == pytest.approx(hit.score, abs=tie)
        if got.id != hit.id:
            assert got.id in wanted and abs(wanted[got.id] - hit.score) < tie


def test_searcher_answers_like_its_library(tiny_library, tiny_searcher: Path) -> None:
    searcher = TextSearcher.create_from_file(tiny_searcher, SearcherOptions(max_results=5))
    for text in ["something red", "a blue and yellow flag", "purple"]:
        result = searcher.search(text)
        assert result.ids == [h.id for h in tiny_library.search(text, k=5)]
    top = searcher.search("red").nearest_neighbors[0]
    assert top.metadata["colour"] == "red" and "red" in Path(top.metadata["path"]).name
    assert top.distance == pytest.approx(1 - top.score)
    images = ImageSearcher.create_from_file(tiny_searcher)
    query = tiny_library.get(top.id).path
    assert_same_ranking(images.search(query), tiny_library.search(image=query, k=10))
    pixels = np.asarray(Image.open(query).convert("RGB"))
    assert images.search(pixels).ids[0] == top.id
    assert images.search(Image.open(query), k=2).ids[0] == top.id


def test_searchers_take_the_librarys_search_query(
    tiny_library, tiny_searcher: Path, tmp_path: Path
) -> None:
    """A SearchQuery asks a searcher what the same keywords ask it (and the library);
    what a kind of searcher cannot answer is refused in one line."""
    texts = TextSearcher.create_from_file(tiny_searcher)
    images = ImageSearcher.create_from_file(tiny_searcher)
    folder = tmp_path / "photos" / "more"
    query = picsearch.SearchQuery(text="something red", k=3, folder=folder)
    found = texts.search(query).ids
    assert found == texts.search("something red", k=3, folder=folder).ids
    assert found == [h.id for h in tiny_library.search(query)] and len(found) == 3
    photo = tiny_library.get(found[0]).path
    assert images.search(picsearch.SearchQuery(image=photo, k=2)).ids == (
        images.search(photo, k=2).ids
    )
    refusals = [
        (texts, picsearch.SearchQuery(text="red", image=photo), "TextSearcher takes no image"),
        (texts, picsearch.SearchQuery(like=found[0]), "TextSearcher takes no like"),
        (images, picsearch.SearchQuery(text="red", image=photo), "ImageSearcher takes no text"),
        (images, picsearch.SearchQuery(k=2, bw=False), "give an example image"),
        (texts, picsearch.SearchQuery(text="red", k=0), "k must be a whole number"),
    ]
    for searcher, refused, message in refusals:
        with pytest.raises(picsearch.InvalidInput, match=message) as caught:
            searcher.search(refused)
        assert "\n" not in str(caught.value)
    with pytest.raises(picsearch.InvalidInput, match="as a SearchQuery or as keywords, not both"):
        texts.search(query, k=2)


def test_cli_export_then_search(tiny_library, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.searcher"
    assert main(["export", "--db", str(tiny_library.path), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 16 and report["bytes"] == out.stat().st_size
    assert main(["search", "green", "--searcher", str(out), "-k", "2", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["metadata"]["colour"] for r in results] == ["green", "green"]
    assert main(["search", "--image", results[0]["path"], "--searcher", str(out), "-k", "1"]) == 0
    assert "green" in capsys.readouterr().out
    more = tmp_path / "photos" / "more"
    assert main(["search", "green", "--searcher", str(out), "--folder", str(more), "--json"]) == 0
    assert {Path(r["path"]).parent for r in json.loads(capsys.readouterr().out)} == {more}
    for flags, message in [
        (["--like", "1"], "--like is not supported with --searcher"),
        (["--db", str(tiny_library.path)], "give --db LIBRARY or --searcher FILE, not both"),
        (["-k", "0"], "k must be a whole number of at least 1, not 0"),
    ]:
        assert main(["search", "green", "--searcher", str(out), *flags]) == 1
        printed = capsys.readouterr()
        assert printed.out == "" and printed.err.startswith("picsearch: error: ")
        assert message in printed.err and printed.err.count("\n") == 1


@pytest.mark.parametrize("quantize", ["vectors", "int8"])
def test_int8_export_reports_its_cost(tiny_library, tmp_path: Path, quantize: str) -> None:
    report = export_searcher(tiny_library, tmp_path / "small.searcher", quantize=quantize)
    assert report.quantize == quantize and report.text_recall_at_10 >= 0.98
    manifest = json.loads(zipfile.ZipFile(report.path).read("manifest.json"))
    assert manifest["quantize"] == quantize and manifest["spaces"]["joint"]["backend"] == "exact"
    assert "store_int8.npy" in " ".join(manifest["parts"])


def test_bad_exports_and_queries(tiny_library, tiny_searcher: Path, tmp_path: Path) -> None:
    with pytest.raises(picsearch.InvalidInput, match="quantize='int4' must be one of"):
        export_searcher(tiny_library, tmp_path / "x.searcher", quantize="int4")
    empty = picsearch.open(tmp_path / "empty.db", model="tiny")
    with pytest.raises(picsearch.LibraryError, match="is empty"):
        export_searcher(empty, tmp_path / "x.searcher")
    searcher = TextSearcher.create_from_file(tiny_searcher)
    with pytest.raises(picsearch.InvalidInput, match="text query is empty"):
        searcher.search("  ")
    with pytest.raises(picsearch.InvalidInput, match="max_results must be"):
        SearcherOptions(max_results=0)
    with pytest.raises(picsearch.InvalidInput, match="uint8 pixels"):
        ImageSearcher.create_from_file(tiny_searcher).search(np.zeros((4, 4, 3)))
    with pytest.raises(SearcherFileError, match="no searcher file"):
        TextSearcher.create_from_file(tmp_path / "missing.searcher")


def _rewrite(source: Path, target: Path, change) -> Path:
    """Copy a searcher, passing each (name, bytes) through change(); None drops a member."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            result = change(info.filename, old.read(info))
            if result is not None:
                new.writestr(result[0], result[1])
    return target


def _manifest_edit(edit):
    def change(name: str, data: bytes):
        if name != "manifest.json":
            return name, data
        manifest = json.loads(data)
        edit(manifest)
        return name, json.dumps(manifest).encode()

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_manifest_edit(lambda m: m.update(format="something-else")), "not describe a picsearch"),
        (_manifest_edit(lambda m: m.update(format_version=99)), "format 99, newer than"),
        (_manifest_edit(lambda m: m["model"]["dims"].update(joint=9)), "joint index does not"),
        (_manifest_edit(lambda m: m.update(items=3)), "does not hold the 3 items"),
        (lambda n, d: (n, d[:-1] + b"x") if n == "items/ids.npy" else (n, d), "fails its checksum"),
        (
            lambda n, d: None if n.endswith("tokenizer.json") else (n, d),
            "tokenizer.json is missing",
        ),
        (lambda n, d: (n, d) if n != "manifest.json" else (n, b"{"), "manifest is not valid JSON"),
        (lambda n, d: ("../" + n, d) if n.endswith("ids.npy") else (n, d), "unsafe member name"),
        (lambda n, d: ("/abs/" + n, d) if n.endswith("ids.npy") else (n, d), "unsafe member name"),
    ],
)
def test_refuses_foreign_or_damaged_parts(tiny_searcher: Path, tmp_path: Path, change, message):
    bad = _rewrite(tiny_searcher, tmp_path / "bad.searcher", change)
    with pytest.raises(SearcherFileError, match=message):
        TextSearcher.create_from_file(bad)


def test_fuzzed_files_end_in_our_own_error(tiny_searcher: Path, tmp_path: Path) -> None:
    """Random byte flips and truncations: a clean refusal or a correct answer, nothing else."""
    original = tiny_searcher.read_bytes()
    expected = TextSearcher.create_from_file(tiny_searcher).search("red").ids
    rng = np.random.default_rng(0)
    cases = [original[: int(n)] for n in rng.integers(0, len(original), 60)]
    for _ in range(400):
        data = bytearray(original)
        for offset in rng.integers(0, len(data), rng.integers(1, 9)):
            data[offset] ^= int(rng.integers(1, 256))
        cases.append(bytes(data))
    outcomes = {"refused": 0, "answered": 0}
    path = tmp_path / "fuzzed.searcher"
    for data in cases:
        path.write_bytes(data)
        try:
            ids = TextSearcher.create_from_file(path).search("red").ids
            ImageSearcher.create_from_file(path).search(np.zeros((8, 8, 3), np.uint8))
        except SearcherFileError as exc:
            assert str(path) in str(exc)
            outcomes["refused"] += 1
        else:
            assert ids == expected  # a flip the checks let through changed nothing that matters
            outcomes["answered"] += 1
    assert outcomes["refused"] > 400  # nearly every damaged file is caught


# -- filters and the hit shape: a searcher answers as its library --------------------------

WORDS = "HARDWARE STORE"
#: File times of the concept photos (local time), for the date filters.
TAKEN = {
    "sign.jpg": "2020-03-01",
    "grey_coffee.jpg": "2020-06-01",
    "coffee.jpg": "2021-03-01",
    "red.png": "2021-06-01",
    "astronaut.jpg": "2022-01-01",
    "sub/cat.jpg": "2022-06-01",
}


def _concept_photos(folder: Path) -> None:
    """A painted sign, a greyscale copy, a red photo, a person and a cat (in sub/)."""
    from PIL import ImageDraw, ImageFont, ImageOps

    from picsearch.samples import load_sample_photo

    sign = load_sample_photo("rocket").convert("RGB")
    draw = ImageDraw.Draw(sign)
    box = draw.textbbox((30, 40), WORDS, font=ImageFont.load_default(size=64))
    draw.rectangle((box[0] - 12, box[1] - 12, box[2] + 12, box[3] + 12), fill="white")
    draw.text((30, 40), WORDS, fill="black", font=ImageFont.load_default(size=64))
    (folder / "sub").mkdir(parents=True)
    sign.save(folder / "sign.jpg", quality=92)
    ImageOps.grayscale(load_sample_photo("coffee")).save(folder / "grey_coffee.jpg")
    load_sample_photo("coffee").save(folder / "coffee.jpg")
    Image.new("RGB", (160, 120), (215, 25, 30)).save(folder / "red.png")
    load_sample_photo("astronaut").save(folder / "astronaut.jpg")
    load_sample_photo("chelsea").save(folder / "sub" / "cat.jpg")
    for name, day in TAKEN.items():
        moment = dt.datetime.fromisoformat(day).timestamp()
        os.utime(folder / name, (moment, moment))


@pytest.fixture(scope="module")
def concepts(tmp_path_factory: pytest.TempPathFactory):
    """(library, its searcher file, the photo folder), indexed with every detector."""
    folder = tmp_path_factory.mktemp("concept-photos")
    _concept_photos(folder)
    work = tmp_path_factory.mktemp("concept-searcher")
    with picsearch.open(work / "lib.db", model="tiny") as library:
        library.index(folder, concepts="full", workers=1)
        export_searcher(library, work / "photos.searcher")
        yield library, work / "photos.searcher", folder


def _same_hits(got: list[dict], want: list[dict]) -> None:
    """The same hits (ids, paths, metadata, concepts, words) in the same order."""
    assert [h["id"] for h in got] == [h["id"] for h in want]
    for mine, theirs in zip(got, want, strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)
        assert {**mine, "score": 0} == {**theirs, "score": 0}


TEXT_QUERIES = [
    {"text": "hardware store"},  # the words read in the sign add to its score
    {"text": "red"},  # tied scores in the library's order
    {"bw": True},  # filters alone list the photos by confidence
    {"people": True},
    {"has_text": True},
    {"text": "a photo", "people": False},
    {"text": "something red", "color": "red"},
    {"text": "hardware", "text_only": True},
    {"text": "zebra crossing", "text_only": True},
    {"text": "a photo", "folder": "sub"},
    {"text": "a photo", "after": "2021-01-01"},
    {"text": "a photo", "before": "2021-06-01", "bw": False},
    {"text": "a photo", "after": "2030-01-01"},
]


@pytest.mark.parametrize("query", TEXT_QUERIES, ids=str)
def test_searcher_filters_and_ranks_like_its_library(concepts, query: dict) -> None:
    library, searcher_file, folder = concepts
    query = dict(query)
    text = query.pop("text", None)
    if "folder" in query:
        query["folder"] = folder / query["folder"]
    want = [hit.to_dict() for hit in library.search(text, **query)]
    got = TextSearcher.create_from_file(searcher_file).search(text, **query).to_list()
    _same_hits(got, want)
    assert want or text == "zebra crossing" or "2030" in str(query)


@pytest.mark.parametrize(
    "query", [{"bw": False}, {"people": False, "color": "red"}, {"before": "2021-01-01"}], ids=str
)
def test_image_searcher_filters_like_its_library(concepts, query: dict) -> None:
    library, searcher_file, folder = concepts
    photo = folder / "coffee.jpg"
    hits = library.search(image=photo, **query)
    result = ImageSearcher.create_from_file(searcher_file).search(photo, **query)
    assert hits and set(result.ids) == {h.id for h in hits}
    # Photos larger than the sixteen-pixel tiny model's input are shrunk by two decoders.
    assert_same_ranking(result, hits, tie=5e-3)


CLI_FLAGS = [
    ["a photo", "--bw"],
    ["--bw"],
    ["a photo", "--people"],
    ["a photo", "--no-people"],
    ["a photo", "--color", "red"],
    ["a photo", "--has-text"],
    ["hardware", "--text-only"],
    ["a photo", "--folder", "{folder}/sub"],
    ["a photo", "--after", "2021-01-01"],
    ["a photo", "--before", "2021-01-01"],
    ["--image", "{folder}/coffee.jpg", "--no-people", "--after", "2021-01-01"],
]


@pytest.mark.parametrize("flags", CLI_FLAGS, ids=" ".join)
def test_every_search_flag_works_on_a_searcher(concepts, capsys, flags: list[str]) -> None:
    """`search --searcher F` prints what `search --db` prints, flag for flag."""
    library, searcher_file, folder = concepts
    flags = [flag.format(folder=folder) for flag in flags]
    printed = {}
    for source in (["--db", str(library.path)], ["--searcher", str(searcher_file)]):
        assert main(["search", *flags, *source, "--json"]) == 0
        printed[source[0]] = json.loads(capsys.readouterr().out)
    assert printed["--db"]
    if "--image" in flags:
        assert [h["id"] for h in printed["--searcher"]] == [h["id"] for h in printed["--db"]]
    else:
        _same_hits(printed["--searcher"], printed["--db"])


def _shape(hit: dict) -> list[tuple]:
    """Each key of a hit with its value's type, in order, nested dicts included."""
    return [
        (key, type(value).__name__, _shape(value) if key == "metadata" else None)
        for key, value in hit.items()
    ] + [("concept", type(v).__name__, None) for v in hit.get("concepts", {}).values()]


def test_json_is_one_shape_for_libraries_and_searchers(concepts, tmp_path: Path, capsys) -> None:
    """The same keys in the same order with the same types, from --db and --searcher, for
    text, image and filter searches, and from a searcher exported before it kept concepts."""
    library, searcher_file, folder = concepts
    older = _as_exported_before_filters(searcher_file, tmp_path / "older.searcher")
    for query in (["hardware store"], ["--image", str(folder / "sign.jpg")], ["--has-text"]):
        shapes = []
        for source in (["--db", str(library.path)], ["--searcher", str(searcher_file)]):
            assert main(["search", *query, *source, "--json", "-k", "3"]) == 0
            hits = json.loads(capsys.readouterr().out)
            assert hits and [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
            shapes.append([_shape(hit) for hit in hits if hit["concepts"]])
        assert shapes[0] == shapes[1] and shapes[0]
    assert list(library.search("red", k=1)[0].to_dict()) == [
        *("rank", "id", "path", "score", "metadata", "concepts", "text", "weak")
    ]
    assert main(["search", "hardware store", "--searcher", str(older), "--json"]) == 0
    (hit, *_) = json.loads(capsys.readouterr().out)
    assert list(hit) == list(library.search("red", k=1)[0].to_dict())
    assert hit["concepts"] == {} and hit["text"] == "" and isinstance(hit["metadata"], dict)


def _as_exported_before_filters(source: Path, target: Path) -> Path:
    """The searcher as the previous picsearch wrote it: no file times, no concepts."""
    dropped = {"items/concepts.json", "items/mtime_ns.npy"}

    def change(name: str, data: bytes):
        if name in dropped:
            return None
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["parts"] = {k: v for k, v in manifest["parts"].items() if k not in dropped}
            return name, json.dumps(manifest).encode()
        return name, data

    return _rewrite(source, target, change)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["a photo", "--bw"], "the bw filter needs what was seen in the photos"),
        (["--people", "--color", "red"], "the people and color filters need"),
        (["a photo", "--has-text"], "the has_text filter needs"),
        (["hardware", "--text-only"], "a text-only search needs what was seen"),
        (["a photo", "--after", "2021-01-01"], "the date filters need the photos' file times"),
        (["a photo", "--before", "2021-01-01"], "the date filters need the photos' file times"),
    ],
)
def test_older_searcher_opens_and_refuses_what_it_lacks(
    concepts, tmp_path: Path, capsys, flags: list[str], message: str
) -> None:
    library, searcher_file, folder = concepts
    older = _as_exported_before_filters(searcher_file, tmp_path / "older.searcher")
    searcher = TextSearcher.create_from_file(older)
    assert searcher.search("a photo").ids == [h.id for h in library.search("a photo")]
    # The folder filter reads the paths every searcher kept.
    assert searcher.search("a photo", folder=folder / "sub").ids == [
        h.id for h in library.search("a photo", folder=folder / "sub")
    ]
    assert main(["search", *flags, "--searcher", str(older)]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1
    assert (
        message in printed.err and f"{older} lacks (exported by an older picsearch)" in printed.err
    )
    assert printed.err.strip().endswith("export it again with 'picsearch export'")


def test_filters_on_concepts_never_looked_for_say_how_to_fix_it(
    tiny_library, tiny_searcher: Path
) -> None:
    """The tiny library ran no OCR: the searcher says to index with 'full', then re-export."""
    searcher = TextSearcher.create_from_file(tiny_searcher)
    with pytest.raises(picsearch.InvalidInput, match="was read for words.*then export it again"):
        searcher.search("store", text_only=True)
    with pytest.raises(picsearch.InvalidInput, match="unknown colour 'plaid'"):
        searcher.search("red", color="plaid")
    with pytest.raises(picsearch.InvalidInput, match="nothing to search for"):
        searcher.search()
    assert searcher.search(bw=False, k=3).ids == [h.id for h in tiny_library.search(bw=False, k=3)]


def test_default_model_searcher_runs_without_torch(tmp_path: Path, model_cache: Path) -> None:
    """The real default model exported and queried in a fresh process that never imports torch."""
    from picsearch.samples import write_sample_photos

    write_sample_photos(tmp_path / "photos")
    with picsearch.open(tmp_path / "lib.db") as library:
        library.index(tmp_path / "photos")
        report = export_searcher(library, tmp_path / "samples.searcher")
        expected = [h.path for h in library.search("a cat", k=3)]
    assert report.text_same_order == 1.0 and report.image_recall_at_10 == 1.0
    code = f"""
import sys, json
from picsearch import TextSearcher, ImageSearcher
searcher = TextSearcher.create_from_file({str(tmp_path / "samples.searcher")!r})
paths = [n.metadata["path"] for n in searcher.search("a cat", k=3).nearest_neighbors]
ImageSearcher.create_from_file({str(tmp_path / "samples.searcher")!r}).search(paths[0])
heavy = [m for m in ("torch", "transformers", "onnx") if m in sys.modules]
print(json.dumps({{"paths": paths, "heavy": heavy}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result == {"paths": expected, "heavy": []}


test_default_model_searcher_runs_without_torch = pytest.mark.slow(
    test_default_model_searcher_runs_without_torch
)
