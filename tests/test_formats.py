"""Every format phones and cameras write: HEIC, AVIF, JPEG XL, multi-frame files, RAW/DNG,
RAW+JPEG pairs and Live Photos, and the files picsearch does not read, counted."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import solid_photo
from PIL import Image

import picsearch
from picsearch.cli import main
from picsearch.encoders.tiny import COLOURS, TinyEncoder
from picsearch.formats import register_openers_for
from picsearch.images import IMAGE_EXTENSIONS, Unusable, decode, read_file
from picsearch.ingest.summary import IndexSummary
from picsearch.ingest.walk import Found, pair_up, walk

SIDE = 64
BIG = 1_000_000_000

#: A header of each format, so that Pillow can save it (the readers register lazily).
_HEADERS = {
    "HEIF": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    "AVIF": b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif",
    "JXL": b"\xff\x0a",
}


def picture(size: tuple[int, int] = (120, 80)) -> Image.Image:
    """Left half red, right half blue: orientation and colours both show."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = COLOURS["red"]
    pixels[:, width // 2 :] = COLOURS["blue"]
    return Image.fromarray(pixels)


def encoded(image: Image.Image, fmt: str, **save: object) -> bytes:
    register_openers_for(_HEADERS.get(fmt, b""))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def vector(image: Image.Image) -> np.ndarray:
    encoder = TinyEncoder()
    return encoder.embed_arrays(encoder.preprocess(image)[None]).joint[0]


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF", "JXL"])
def test_phone_formats_decode_like_their_source(fmt: str) -> None:
    source = picture()
    image, width, height = decode(encoded(source, fmt), short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (120, 80)
    assert min(image.size) == SIDE and image.mode == "RGB"
    assert float(vector(image) @ vector(source)) > 0.99
    left, right = image.getpixel((5, 30)), image.getpixel((image.width - 5, 30))
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]  # red left, blue right


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF", "JXL"])
def test_phone_formats_pass_the_header_check(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(encoded(picture(), fmt))
    assert read_file(path).data == path.read_bytes()
    assert {".heic", ".heif", ".avif", ".jxl"} <= IMAGE_EXTENSIONS


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF", "JXL"])
def test_phone_formats_orientation_is_applied(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90° clockwise when shown
    data = encoded(picture(), fmt, exif=exif.tobytes())
    image, width, height = decode(data, short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (80, 120) and image.width < image.height
    top, bottom = image.getpixel((30, 5)), image.getpixel((30, image.height - 5))
    assert top[0] > 150 and bottom[2] > 150  # the red left half is now on top


def test_heic_uses_a_large_enough_thumbnail() -> None:
    big = picture((1200, 800))
    data = encoded(big, "HEIF", thumbnails=[256])
    # decode asks for a draft: with a thumbnail of 256 pixels, the 1200x800 image is not decoded.
    assert Image.open(io.BytesIO(data)).draft("RGB", (SIDE, SIDE)) is not None
    image, width, height = decode(data, short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (1200, 800) and min(image.size) == SIDE
    assert float(vector(image) @ vector(big)) > 0.99


def test_heic_uses_a_phone_thumbnail_a_little_under_the_size_asked() -> None:
    """Phones embed 320x240 thumbnails: decoding for 256 pixels takes one (the model
    resizes it), where decoding the whole photo costs 10-30 times as much."""
    big = picture((1200, 900))
    data = encoded(big, "HEIF", thumbnails=[320])
    image, width, height = decode(data, short_side=256, max_pixels=BIG)
    assert (width, height) == (1200, 900) and image.size == (320, 240)
    assert float(vector(image) @ vector(big)) > 0.99
    image, _, _ = decode(data, short_side=280, max_pixels=BIG)  # 240 is too far under 280
    assert min(image.size) == 280


def test_broken_heic_is_unusable_with_its_reason() -> None:
    data = encoded(picture(), "HEIF")
    with pytest.raises(Unusable, match="corrupt|not an image"):
        decode(data[: len(data) // 2], short_side=SIDE, max_pixels=BIG)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "HEIF"])
def test_multi_frame_files_give_their_first_frame(fmt: str) -> None:
    frames = [picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    image, _, _ = decode(data, short_side=SIDE, max_pixels=BIG)
    assert image.getpixel((5, 30))[0] > 150  # red on the left: the first frame


def dng(
    size: tuple[int, int] = (192, 128), preview: Image.Image | None = None, orientation: int = 1
) -> bytes:
    """A minimal DNG LibRaw opens: RGGB sensor data of a red left half, blue right half,
    optionally with an 8-bit RGB preview first (as cameras write one)."""
    width, height = size
    sensor = np.full((height, width), 2000, np.uint16)
    sensor[0::2, 0::2][:, : width // 4] = 60000  # red photosites, left half
    sensor[1::2, 1::2][:, width // 4 :] = 60000  # blue photosites, right half
    dng_tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50708, "s", 0, "picsearch test", True),  # UniqueCameraModel
        (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
        (274, "H", 1, orientation, True),
    ]
    sensor_tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50717, "I", 1, 65535, True),  # WhiteLevel
    ]
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        if preview is None:
            tiff.write(sensor, photometric=32803, extratags=dng_tags + sensor_tags, metadata=None)
        else:
            rgb = np.asarray(preview.convert("RGB"))
            first = {"photometric": "rgb", "subfiletype": 1, "subifds": 1, "metadata": None}
            tiff.write(rgb, extratags=dng_tags, **first)
            tiff.write(sensor, photometric=32803, extratags=sensor_tags, metadata=None)
    return buffer.getvalue()


def test_dng_is_demosaiced_at_half_size() -> None:
    image, width, height = decode(dng(), short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (192, 128) and min(image.size) == SIDE
    left, right = image.getpixel((5, 30)), image.getpixel((image.width - 5, 30))
    assert left[0] > left[2] and right[2] > right[0]  # red left, blue right


def test_dng_preview_is_used_when_large_enough() -> None:
    preview = Image.new("RGB", (180, 120), COLOURS["green"])  # unlike the sensor data
    image, width, height = decode(dng(preview=preview), short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (192, 128)
    assert float(vector(image) @ vector(preview)) > 0.99
    # Asked for more than the preview holds, the sensor data is demosaiced instead.
    image, _, _ = decode(dng(preview=preview), short_side=121, max_pixels=BIG)
    assert float(vector(image) @ vector(preview)) < 0.9


def test_raw_libraw_cannot_decode_is_skipped_with_its_reason(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.raf").write_bytes(b"FUJIFILMCCD-RAW 0201" + bytes(4000))
    (folder / "truncated.dng").write_bytes(dng()[:400])
    solid_photo(folder / "red.jpg", "red")
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        summary = library.index(folder)
    assert summary.added == 1
    reasons = {os.path.basename(skip.path): skip.reason for skip in summary.skipped}
    assert set(reasons) == {"broken.raf", "truncated.dng"}
    assert all("RAW file LibRaw cannot decode" in reason for reason in reasons.values())


def test_plain_tiff_is_not_taken_for_raw() -> None:
    data = encoded(picture(), "TIFF")
    image, width, height = decode(data, short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (120, 80) and image.getpixel((5, 30))[0] > 150


def names(found: list[object]) -> dict[str, list[str]]:
    return {
        os.path.basename(f.path): [os.path.basename(p) for p in f.linked]
        for f in found
        if isinstance(f, Found)
    }


def test_raw_jpeg_pairs_and_live_photos_are_one_photo(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    solid_photo(folder / "IMG_1.JPG", "red")
    (folder / "IMG_1.CR2").write_bytes(b"raw")
    solid_photo(folder / "IMG_2.heic", "blue", format="PNG")
    (folder / "IMG_2.MOV").write_bytes(b"movie")
    (folder / "IMG_3.dng").write_bytes(dng())  # a RAW alone is a photo itself
    (folder / "IMG_4.mov").write_bytes(b"movie")  # a movie alone is not read
    ignored: dict[str, int] = {}
    assert names(list(walk([str(folder)], ignored))) == {
        "IMG_1.JPG": ["IMG_1.CR2"],
        "IMG_2.heic": ["IMG_2.MOV"],
        "IMG_3.dng": [],
    }
    assert ignored == {".mov": 1}


def test_pairs_need_the_same_name_and_a_picture() -> None:
    paths = ["/p/a.jpg", "/p/a.nef", "/p/b.png", "/p/b.nef", "/p/C.jpeg", "/p/c.ARW", "/p/d.mov"]
    assert pair_up(paths) == {"/p/a.jpg": ["/p/a.nef"], "/p/C.jpeg": ["/p/c.ARW"]}


def test_linked_files_are_in_the_photo_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    solid_photo(folder / "IMG_1.jpg", "red")
    raw = folder / "IMG_1.dng"
    raw.write_bytes(dng())
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        first = library.index(folder)
        [hit] = library.search("red", k=5)
        assert (first.added, Path(hit.path).name) == (1, "IMG_1.jpg")
        assert hit.metadata["linked"] == [str(raw)]
        raw.unlink()  # removing the RAW later keeps the photo
        second = library.index(folder)
        [hit] = library.search("red", k=5)
    assert (second.removed, second.unchanged, Path(hit.path).name) == (0, 1, "IMG_1.jpg")


def test_files_of_other_types_are_counted_not_silent(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    solid_photo(folder / "red.jpg", "red")
    for name in ("a.mov", "b.MOV", "c.xmp", "README", ".DS_Store"):
        (folder / name).write_bytes(b"x")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "d.mov").write_bytes(b"x")
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        summary = library.index(folder)
    assert summary.ignored == {".mov": 2, ".xmp": 1, "(no extension)": 1}
    assert str(summary).endswith("; ignored: 2 .mov, 1 (no extension), 1 .xmp")
    assert str(IndexSummary()).endswith("images/s embedded)")


def test_phone_and_camera_folder_indexes_completely(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for colour, fmt in (("red", "HEIF"), ("green", "AVIF"), ("blue", "JXL")):
        data = encoded(Image.new("RGB", (64, 48), COLOURS[colour]), fmt)
        (folder / f"{colour}.{fmt.lower()}").write_bytes(data)
    (folder / "camera.dng").write_bytes(dng())
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        summary = library.index(folder)
        assert (summary.added, summary.skipped) == (4, [])
        for colour, ext in (("red", "heif"), ("green", "avif"), ("blue", "jxl")):
            assert Path(library.search(colour, k=1)[0].path).name == f"{colour}.{ext}"


def test_a_raw_indexed_alone_joins_its_jpeg_when_one_appears(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    raw = folder / "IMG_1.dng"
    raw.write_bytes(dng())
    (folder / "IMG_2.dng").write_bytes(dng())
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        assert library.index(folder).added == 2
        (folder / "IMG_2.jpg").write_bytes(b"not a jpeg")  # skipped: IMG_2.dng stays a photo
        solid_photo(folder / "IMG_1.jpg", "red")
        summary = library.index(folder)
        paths = {Path(hit.path).name: hit.metadata for hit in library.search("red", k=5)}
    assert (summary.added, summary.removed, len(summary.skipped)) == (1, 1, 1)
    assert paths.keys() == {"IMG_1.jpg", "IMG_2.dng"}
    assert paths["IMG_1.jpg"]["linked"] == [str(raw)] and raw.exists()


@pytest.mark.parametrize("with_preview", [False, True])
def test_raw_orientation_is_applied(with_preview: bool) -> None:
    preview = picture((180, 120)) if with_preview else None
    data = dng(preview=preview, orientation=6)  # turned 90° clockwise when shown
    image, width, height = decode(data, short_side=SIDE, max_pixels=BIG)
    assert (width, height) == (128, 192) and image.width < image.height
    top, bottom = image.getpixel((30, 5)), image.getpixel((30, image.height - 5))
    assert top[0] > top[2] and bottom[2] > bottom[0]  # the red left half is now on top


@pytest.mark.parametrize(
    "data",
    [
        _HEADERS["HEIF"] + bytes(500),
        _HEADERS["AVIF"] + b"x" * 500,
        _HEADERS["JXL"] + b"junk" * 100,
        b"II*\x00\x08\x00\x00\x00CR" + bytes(300),  # a Canon CR2 header, nothing after
    ],
    ids=["heif", "avif", "jxl", "cr2"],
)
def test_junk_behind_a_format_header_is_one_line_reason(data: bytes) -> None:
    with pytest.raises(Unusable) as caught:
        decode(data, short_side=SIDE, max_pixels=BIG)
    reason = str(caught.value)
    assert "\n" not in reason and len(reason) < 200
    assert any(word in reason for word in ("not an image", "corrupt", "cannot decode"))


def test_index_command_says_what_it_ignored(
    tmp_path: Path, colour_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("clip.MOV", "clip2.mov", "notes.xmp"):
        (colour_folder / name).write_bytes(b"x")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(colour_folder), "--db", db, "--model", "tiny"]) == 0
    err = capsys.readouterr().err
    assert "added 4" in err and "ignored: 2 .mov, 1 .xmp" in err


def test_the_page_shows_thumbnails_of_every_format(tmp_path: Path) -> None:
    from picsearch.server import create_app

    fastapi = pytest.importorskip("fastapi.testclient")
    folder = tmp_path / "phone"
    folder.mkdir()
    for name, data in {
        "a.heic": encoded(picture(), "HEIF"),
        "b.avif": encoded(picture(), "AVIF"),
        "c.jxl": encoded(picture(), "JXL"),
        "d.dng": dng(),
    }.items():
        (folder / name).write_bytes(data)
    with picsearch.open(tmp_path / "lib.db", model="tiny") as library:
        assert library.index(folder, concepts="off").added == 4
    app = create_app(tmp_path / "lib.db", thumbnail_dir=tmp_path / "thumbs")
    with fastapi.TestClient(app, base_url="http://127.0.0.1") as client:
        items = client.get("/api/search", params={"q": "red", "k": 10}).json()["hits"]
        for item in items:
            answer = client.get(f"/api/items/{item['id']}/thumbnail", params={"size": 160})
            assert answer.status_code == 200, (item["path"], answer.text)
            thumbnail = Image.open(io.BytesIO(answer.content))
            assert thumbnail.format == "JPEG"
            left, right = (
                thumbnail.getpixel((2, thumbnail.height // 2)),
                thumbnail.getpixel((thumbnail.width - 3, thumbnail.height // 2)),
            )
            assert left[0] > left[2] and right[2] > right[0], item["path"]  # red | blue
    assert len(items) == 4
