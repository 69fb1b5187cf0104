"""Crafted searcher manifests: every field out of its type or range is refused on opening.

Each case rewrites ``manifest.json`` inside a real exported searcher and keeps
every other member as it was. The manifest holds the parts' SHA-256 and is not
itself checksummed, so the parts still pass their checks: what refuses each
file is the manifest's own validation, with a one-line SearcherFileError that
names the file and the field, and ``picsearch search --searcher`` prints that
line and exits 1.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import solid_photo

import picsearch
from picsearch import ImageSearcher, SearcherFileError, TextSearcher
from picsearch.cli import main
from picsearch.searcher.export import export_searcher

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real searcher of four tiny-model photos."""
    folder = tmp_path_factory.mktemp("hostile-photos")
    for colour in ("red", "green", "blue", "yellow"):
        solid_photo(folder / f"{colour}.png", colour)
    work = tmp_path_factory.mktemp("hostile-searcher")
    with picsearch.open(work / "lib.db", model="tiny") as library:
        library.index(folder, concepts="off")
        export_searcher(library, work / "photos.searcher")
    return work / "photos.searcher"


def crafted(source: Path, target: Path, edit: Edit | None = None, raw: bytes | None = None) -> Path:
    """A copy of ``source`` whose manifest went through ``edit`` (or is ``raw``)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "manifest.json":
                if raw is not None:
                    data = raw
                else:
                    manifest = json.loads(data)
                    edit(manifest)  # type: ignore[misc]
                    data = json.dumps(manifest).encode()
            new.writestr(info, data)
    return target


def preprocess(**changes: Any) -> Edit:
    """Set (or, with None, delete) fields of the image preprocessing."""

    def edit(manifest: dict[str, Any]) -> None:
        spec = manifest["encoders"]["image"]["preprocess"]
        for key, value in changes.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value

    return edit


def at(*keys: str, value: Any = ..., delete: bool = False) -> Edit:
    """Set (or delete) the field at ``keys``."""

    def edit(manifest: dict[str, Any]) -> None:
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        if delete:
            del node[keys[-1]]
        else:
            node[keys[-1]] = copy.deepcopy(value)

    return edit


SHORT = {"resize": None, "crop": [16, 16]}  # the tiny model's graph takes 16 x 16 pixels
P = "encoders.image.preprocess"
CASES: dict[str, tuple[Edit, str]] = {
    # image preprocessing: sizes, filters, pixel factors
    "resize_short huge": (preprocess(**SHORT, resize_short=10**6), f"{P}.resize_short is 1000000"),
    "resize_short zero": (preprocess(**SHORT, resize_short=0), f"{P}.resize_short is 0, outside"),
    "resize_short negative": (preprocess(**SHORT, resize_short=-5), f"{P}.resize_short is -5"),
    "resize_short text": (preprocess(**SHORT, resize_short="big"), "must be a whole number"),
    "resize_short fraction": (preprocess(**SHORT, resize_short=2.5), "must be a whole number"),
    "resize_short bool": (preprocess(**SHORT, resize_short=True), "must be a whole number"),
    "resize zero": (preprocess(resize=[0, 0]), f"{P}.resize[0] is 0, outside"),
    "resize huge": (preprocess(resize=[16, 10**9]), f"{P}.resize[1] is 1000000000"),
    "resize one side": (preprocess(resize=[16]), f"{P}.resize must be a list of 2"),
    "crop zero": (preprocess(crop=[0, 0]), f"{P}.crop[0] is 0, outside"),
    "crop three sides": (preprocess(crop=[16, 16, 16]), f"{P}.crop must be a list of 2"),
    "crop as text": (preprocess(crop="16x16"), f"{P}.crop must be a list of 2"),
    "resize and resize_short": (preprocess(resize_short=16), "cannot both be given"),
    "no size at all": (preprocess(resize=None), f"{P}.crop is missing"),
    "unknown resample": (preprocess(resample="sideways"), "must be one of bilinear, bicubic"),
    "resample number": (preprocess(resample=2), f"{P}.resample must be text"),
    "unknown rounding": (preprocess(rounding="ceil"), f"{P}.rounding must be one of"),
    "pad_to_crop text": (preprocess(pad_to_crop="yes"), "must be true or false"),
    "scale of two": (preprocess(scale=[1.0, 1.0]), f"{P}.scale must be a list of 3"),
    "scale not a number": (preprocess(scale=[1.0, "x", 1.0]), f"{P}.scale[1] must be a finite"),
    "shift NaN": (preprocess(shift=[float("nan"), 0.0, 0.0]), f"{P}.shift[0] must be a finite"),
    "shift infinite": (preprocess(shift=[0.0, float("inf"), 0.0]), f"{P}.shift[1] must be"),
    "scale huge": (preprocess(scale=[1e300, 1.0, 1.0]), f"{P}.scale[0] is 1e+300"),
    "no scale": (preprocess(scale=None), f"{P}.scale is missing"),
    "preprocess not an object": (at("encoders", "image", "preprocess", value=[]), "an object"),
    # dimensions
    "dims huge": (at("model", "dims", "joint", value=10**9), "model.dims.joint is 1000000000"),
    "dims zero": (at("model", "dims", "joint", value=0), "model.dims.joint is 0, outside"),
    "dims negative": (at("model", "dims", "visual", value=-48), "model.dims.visual is -48"),
    "dims as a number": (at("model", "dims", value=10**9), "model.dims must be an object"),
    "dims text": (at("model", "dims", "joint", value="8"), "model.dims.joint must be a whole"),
    "dims missing visual": (at("model", "dims", "visual", delete=True), "model.dims.visual is"),
    "dims disagree with the index": (at("model", "dims", "joint", value=9), "joint index does"),
    # format and version
    "format version 0": (at("format_version", value=0), "format_version is 0, outside 1..1"),
    "format version text": (at("format_version", value="1"), "format_version must be a whole"),
    "format version bool": (at("format_version", value=True), "format_version must be a whole"),
    "format version fraction": (at("format_version", value=1.5), "format_version must be"),
    "format version missing": (at("format_version", delete=True), "format_version is missing"),
    "format version 999": (at("format_version", value=999), "format 999, newer than this"),
    "format other": (at("format", value="zip"), "does not describe a picsearch searcher"),
    # the other fields
    "items negative": (at("items", value=-3), "field items is -3, outside"),
    "items text": (at("items", value="4"), "field items must be a whole number"),
    "items huge": (at("items", value=10**20), "field items is 100000000000000000000"),
    "items missing": (at("items", delete=True), "field items is missing"),
    "model missing": (at("model", delete=True), "field model is missing"),
    "encoders missing": (at("encoders", delete=True), "field encoders is missing"),
    "spaces missing": (at("spaces", delete=True), "field spaces is missing"),
    "parts missing": (at("parts", delete=True), "field parts is missing"),
    "distance other": (at("distance", value="l2"), "field distance must be one of dot"),
    "quantize other": (at("quantize", value="int4"), "field quantize must be one of"),
    "text onnx not a part": (at("encoders", "text", "onnx", value="gone.onnx"), "not in parts"),
    "text onnx escapes": (at("encoders", "text", "onnx", value="../x"), "not a valid value"),
    "tokenizer number": (at("encoders", "text", "tokenizer", value=3), "tokenizer must be text"),
    "text weights other": (at("encoders", "text", "weights", value="int2"), "weights must be"),
    "outputs empty": (at("encoders", "image", "outputs", value=[]), "outputs must be a list"),
    "outputs twice": (at("encoders", "image", "outputs", value=["joint", "joint"]), "distinct"),
    "outputs unknown": (at("encoders", "image", "outputs", value=["joint", "rgb"]), "not 'rgb'"),
    "outputs no joint": (at("encoders", "image", "outputs", value=["visual"]), "include joint"),
    "space unknown": (at("spaces", "audio", value={}), "spaces key must be one of"),
    "space no joint": (at("spaces", "joint", delete=True), "spaces has no joint index"),
    "space folder": (at("spaces", "joint", "folder", value="index/visual"), "must be index/joint"),
    "space backend": (at("spaces", "joint", "backend", value="magic"), "backend must be one of"),
    "space size": (at("spaces", "joint", "size", value=3), "joint index holds 4 vectors, not 3"),
    "space size negative": (at("spaces", "joint", "size", value=-1), "size is -1, outside"),
    "part checksum text": (at("parts", "items/ids.npy", "sha256", value="xyz"), "sha256 is not"),
    "part size negative": (at("parts", "items/ids.npy", "bytes", value=-1), "bytes is -1"),
    "part size beyond the file": (
        at("parts", "items/ids.npy", "bytes", value=10**12),
        "parts.items/ids.npy.bytes is 1000000000000, more than the file's",
    ),
    "part record not an object": (at("parts", "items/ids.npy", value=7), "must be an object"),
}


#: Found when the joint index is loaded, which only the text searcher does (the tiny
#: model's image queries search its visual index).
JOINT_INDEX_CHECKS = {"dims disagree with the index", "space size"}


def assert_one_line_refusal(path: Path, opener: type, message: str) -> None:
    with pytest.raises(SearcherFileError) as refused:
        opener.create_from_file(path)
    text = str(refused.value)
    assert str(path) in text and message in text and "\n" not in text


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_manifest_is_refused_by_name(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    edit, message = CASES[case]
    bad = crafted(exported, tmp_path / "crafted.searcher", edit)
    assert_one_line_refusal(bad, TextSearcher, message)
    if case not in JOINT_INDEX_CHECKS:
        assert_one_line_refusal(bad, ImageSearcher, message)
    assert main(["search", "red", "--searcher", str(bad)]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith("picsearch: error: ")
    assert printed.err.count("\n") == 1 and str(bad) in printed.err


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[]", "does not describe a picsearch searcher"),
        (b"null", "does not describe a picsearch searcher"),
        (b"[" * 100_000 + b"]" * 100_000, "manifest is not valid JSON"),
        (b'{"format": "picsearch-searcher", "format_version": 1}', "field model is missing"),
    ],
)
def test_manifest_that_is_no_object_is_refused(
    exported: Path, tmp_path: Path, raw: bytes, message: str
) -> None:
    bad = crafted(exported, tmp_path / "crafted.searcher", raw=raw)
    assert_one_line_refusal(bad, TextSearcher, message)


def test_unknown_manifest_fields_are_left_alone(exported: Path, tmp_path: Path) -> None:
    """A later minor addition to the format still opens (and answers the same)."""
    extended = crafted(exported, tmp_path / "extended.searcher", at("comment", value={"a": 1}))
    want = TextSearcher.create_from_file(exported).search("red").ids
    searcher = TextSearcher.create_from_file(extended)
    assert searcher.search("red").ids == want and searcher.manifest["comment"] == {"a": 1}
    image = np.zeros((8, 8, 3), np.uint8)
    assert len(ImageSearcher.create_from_file(extended).search(image)) == 4


def test_preprocessing_that_disagrees_with_the_graph_is_refused(
    exported: Path, tmp_path: Path
) -> None:
    """A valid size the image graph does not take: refused on opening, not mid-query."""
    bad = crafted(exported, tmp_path / "crafted.searcher", preprocess(resize=[32, 32]))
    TextSearcher.create_from_file(bad)  # the text side does not use the image graph
    assert_one_line_refusal(bad, ImageSearcher, "not the 32x32 of its preprocessing")


def test_visual_dims_that_disagree_with_its_index_are_refused(
    exported: Path, tmp_path: Path
) -> None:
    bad = crafted(exported, tmp_path / "crafted.searcher", at("model", "dims", "visual", value=47))
    TextSearcher.create_from_file(bad)  # text queries never touch the visual space
    assert_one_line_refusal(bad, ImageSearcher, "visual index does not match its 47-d vectors")


def test_preprocess_dicts_are_checked_too() -> None:
    from PIL import Image

    from picsearch.searcher import preprocess as run

    image = Image.new("RGB", (20, 20))
    honest = {"resize": [16, 16], "scale": [1.0] * 3, "shift": [0.0] * 3}
    assert run(image, honest).shape == (3, 16, 16)
    # 5000 is out of range yet small enough not to exhaust memory were it ever let through.
    with pytest.raises(picsearch.InvalidInput, match="resize_short is 5000, outside 1..2048"):
        run(image, {**honest, "resize": None, "crop": [8, 8], "resize_short": 5000})


def test_a_huge_k_returns_every_item_without_allocating_for_k(exported: Path) -> None:
    result = TextSearcher.create_from_file(exported).search("red", k=10**9)
    assert len(result) == 4


@pytest.mark.parametrize("field", ["place", "camera"])
def test_filters_a_searcher_has_no_data_for_are_refused_not_ignored(
    exported: Path, field: str
) -> None:
    from picsearch import SearchQuery

    with pytest.raises(picsearch.InvalidInput, match=f"search by {field} in the library"):
        TextSearcher.create_from_file(exported).search(SearchQuery(text="red", **{field: "x"}))
