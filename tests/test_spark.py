"""Embedding and index building on Spark (local[2]) against the single-machine path.

One SparkSession serves the module. Images are generated; the encoder is
``tiny``. A task is killed midway by a batch hook that ends its Python
worker (os._exit), as a lost executor would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_formats import dng, encoded
from test_photo_info import LISBON, PARIS, exif_jpeg, write

import picsearch
from picsearch import ann
from picsearch.catalog import Catalog
from picsearch.cli import main
from picsearch.errors import MissingDependency
from picsearch.spark import build, embed
from picsearch.spark.shards import column_vectors, iter_shards, read_manifest

pytestmark = [
    pytest.mark.skipif(
        shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
        reason="Spark needs a Java runtime: no 'java' on PATH and no JAVA_HOME",
    ),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

QUERIES = ["red", "a green and blue thing", "yellow", "black white", "purple orange"]


def _jpeg(rng: np.random.Generator) -> bytes:
    blocks = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    image = Image.fromarray(blocks).resize((48, 40), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def _shards(root: Path, count: int, per: int, seed: int) -> list[Path]:
    """Webdataset shards: key.jpg + key.txt (caption) + key.json (metadata) per sample."""
    rng = np.random.default_rng(seed)
    paths = []
    for s in range(count):
        members = []
        for k in range(per):
            key = f"{s:03d}{k:05d}"
            members += [
                (f"{key}.jpg", _jpeg(rng)),
                (f"{key}.txt", f"sample {key}".encode()),
                (f"{key}.json", json.dumps({"n": k}).encode()),
            ]
        paths.append(_tar(root / f"shard-{s:04d}.tar", members))
    return paths


@pytest.fixture(scope="module")
def spark():
    from picsearch.spark.session import spark_session

    session = spark_session("local[2]", log_level="error")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """1,100 images: four tar shards of 250 samples and a folder of 100 files."""
    root = tmp_path_factory.mktemp("collection")
    tars = _shards(root / "tars", 4, 250, seed=1)
    rng = np.random.default_rng(2)
    folder = root / "folder"
    folder.mkdir()
    for k in range(100):
        (folder / f"photo-{k:03d}.jpg").write_bytes(_jpeg(rng))
    # one shard by URI and the others by a brace range, as webdataset users name them
    sources = [tars[0].as_uri(), str(root / "tars" / "shard-{0001..0003}.tar"), str(folder)]
    return {"sources": sources, "folder": folder, "root": root}


@pytest.fixture(scope="module")
def spark_embedded(spark, collection, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("emb-spark")
    summary = embed(
        collection["sources"],
        out,
        model="tiny",
        engine="spark",
        spark=spark,
        files_per_unit=50,
        concepts="off",  # the vectors are compared here; the concepts in the phone folder test
    )
    return out, summary


def _rows(out: Path) -> dict[int, tuple[str, np.ndarray, np.ndarray]]:
    rows = {}
    for _, table in iter_shards(str(out), read_manifest(str(out))):
        joint, visual = column_vectors(table, "joint"), column_vectors(table, "visual")
        ids, uris = table["id"].to_pylist(), table["uri"].to_pylist()
        for i, (item, uri) in enumerate(zip(ids, uris, strict=True)):
            assert item not in rows, f"id {item} written twice"
            rows[item] = (uri, joint[i], visual[i])
    return rows


def _top10(db: Path, folder: Path) -> list[list[tuple[int, float]]]:
    with picsearch.open(db, create=False) as library:
        texts = [library.search(q, k=10) for q in QUERIES]
        images = [library.search(image=folder / f"photo-{k:03d}.jpg", k=10) for k in (0, 7, 42)]
    return [[(hit.id, hit.score) for hit in hits] for hits in texts + images]


def test_spark_matches_the_single_machine_path(spark_embedded, collection, tmp_path) -> None:
    out_spark, on_spark = spark_embedded
    on_one = embed(
        collection["sources"], tmp_path / "emb", model="tiny", files_per_unit=50, concepts="off"
    )
    assert (on_spark.units, on_spark.rows, on_spark.skipped) == (6, 1100, [])
    assert (on_one.units, on_one.rows) == (6, 1100)
    # the model was loaded once per executor process, not per task or row
    assert {r.encoder_loads for r in on_spark.shards} == {1}
    assert len({r.pid for r in on_spark.shards}) <= 2 < len(on_spark.shards)

    spark_rows, local_rows = _rows(out_spark), _rows(tmp_path / "emb")
    assert sorted(spark_rows) == sorted(local_rows) and len(spark_rows) == 1100
    for item, (uri, joint, visual) in spark_rows.items():
        assert local_rows[item][0] == uri
        np.testing.assert_allclose(joint, local_rows[item][1], atol=1e-5)
        np.testing.assert_allclose(visual, local_rows[item][2], atol=1e-5)
    assert any("#000" in uri and uri.endswith(".jpg") for uri, _, _ in spark_rows.values())

    # ... and the vectors are those `picsearch index` computes for the same files
    with picsearch.open(tmp_path / "indexed.db", model="tiny") as library:
        library.index(collection["folder"])
    catalog = Catalog(tmp_path / "indexed.db", create=False)
    ids, vectors = catalog.space_vectors("visual", 48)
    paths = catalog.rows(ids.tolist())
    by_uri = {uri: visual for uri, _, visual in spark_rows.values()}
    for item, vector in zip(ids.tolist(), vectors, strict=True):
        np.testing.assert_allclose(by_uri[paths[item].path], vector, atol=1e-5)
    catalog.close()

    built = build(out_spark, tmp_path / "spark.db", engine="spark", spark=spark)
    build(tmp_path / "emb", tmp_path / "local.db")
    assert built.items == 1100 and built.spaces["joint"]["backend"] == "exact"
    assert _top10(tmp_path / "spark.db", collection["folder"]) == _top10(
        tmp_path / "local.db", collection["folder"]
    )


def test_embed_build_search_with_an_ann_index_on_spark(
    spark, spark_embedded, collection, tmp_path, capsys
) -> None:
    out, _ = spark_embedded
    db = tmp_path / "big.db"
    summary = build(out, db, engine="spark", spark=spark, index=ann.IndexOptions(exact_below=500))
    for space in ("joint", "visual"):
        info = summary.spaces[space]
        assert info["backend"] == "faiss" and info["size"] == 1100
        assert "6 shards added in parallel (spark)" in info["how"]
    assert summary.spaces["visual"]["recall@10"] >= 0.9

    build(out, tmp_path / "exact.db")  # the reference: exact search over the same vectors
    assert (
        main(
            [
                "search",
                "--image",
                str(collection["folder"] / "photo-007.jpg"),
                "--db",
                str(db),
                "--json",
            ]
        )
        == 0
    )
    found = [hit["id"] for hit in json.loads(capsys.readouterr().out)]
    with picsearch.open(tmp_path / "exact.db", create=False) as library:
        exact = [h.id for h in library.search(image=collection["folder"] / "photo-007.jpg")]
    assert found[0] == exact[0] and len(set(found) & set(exact)) >= 8
    assert main(["info", "--db", str(db)]) == 0
    assert "index visual: faiss, 1100 vectors" in capsys.readouterr().out


def test_cli_embed_build_search_on_spark(spark, tmp_path, capsys) -> None:
    tars = _shards(tmp_path / "in", 2, 12, seed=3)
    out, db = str(tmp_path / "emb"), str(tmp_path / "lib.db")
    assert (
        main(
            [
                "embed",
                *map(str, tars),
                "--out",
                out,
                "--model",
                "tiny",
                "--engine",
                "spark",
                "--master",
                "local[2]",
                "--concepts",
                "off",  # the concepts are tested with the phone folder
            ]
        )
        == 0
    )
    assert "2 shards (2 written, 0 already done), 24 images" in capsys.readouterr().err
    assert main(["build", "--embeddings", out, "--db", db, "--engine", "spark"]) == 0
    assert "24 items from 2 shards" in capsys.readouterr().err
    assert main(["search", "red", "--db", db, "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("shard-000" in line and ".tar#" in line for line in lines)


def test_a_killed_task_is_retried_without_a_half_or_duplicate_shard(spark, tmp_path) -> None:
    tars = _shards(tmp_path / "in", 4, 30, seed=4)

    def kill_worker(unit, batches):  # runs in the executor's Python worker
        from pyspark import TaskContext

        if unit.index == 1 and batches == 2 and TaskContext.get().attemptNumber() == 0:
            os._exit(1)  # the worker dies midway through its shard, temp file half written

    summary = embed(
        tars,
        tmp_path / "emb",
        model="tiny",
        engine="spark",
        spark=spark,
        batch_size=8,
        on_batch=kill_worker,
        concepts="off",
    )
    assert summary.retried == 1
    assert [r.attempt for r in summary.shards] == [0, 1, 0, 0]
    rows = _rows(tmp_path / "emb")
    assert len(rows) == summary.rows == 120  # complete, and no id twice (checked in _rows)
    names = sorted(p.name for p in (tmp_path / "emb").iterdir())
    assert names == ["manifest.json"] + [f"shard-{i:06d}.parquet" for i in range(4)]


def test_a_rerun_after_an_interrupted_job_writes_only_the_missing_shards(spark, tmp_path) -> None:
    tars = _shards(tmp_path / "in", 6, 10, seed=5)
    out = tmp_path / "emb"

    def fail_last(unit, batches):
        if unit.index == 5:
            raise RuntimeError("disk full")

    options = {"model": "tiny", "engine": "spark", "spark": spark, "concepts": "off"}
    with pytest.raises(picsearch.PicsearchError, match="disk full.*run the same command again"):
        embed(tars, out, batch_size=4, on_batch=fail_last, **options)
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}
    assert 0 < len(finished) < 6 and not (out / "manifest.json").exists()

    summary = embed(tars, out, batch_size=4, **options)
    written = {r.name for r in summary.shards if r.status == "written"}
    assert summary.kept == len(finished) and written.isdisjoint(finished)
    assert summary.written == 6 - len(finished) and summary.rows == 60
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == finished  # untouched
    again = embed(tars, out, model="tiny", engine="spark", spark=spark)
    assert (again.written, again.kept) == (0, 6)


def test_corrupt_images_in_a_tar_are_skipped_and_counted_like_the_local_path(
    spark, tmp_path
) -> None:
    rng = np.random.default_rng(6)
    good = [_jpeg(rng) for _ in range(3)]
    bad = {
        "truncated.jpg": good[0][: len(good[0]) // 2],
        "notes.jpg": b"this is not an image",
        "empty.jpg": b"",
    }
    members = [(f"good{i}.jpg", data) for i, data in enumerate(good)] + list(bad.items())
    members.append(("orphan.txt", b"a caption without its image"))
    tar = _tar(tmp_path / "shard.tar", members)
    summary = embed([tar], tmp_path / "emb", model="tiny", engine="spark", spark=spark)
    assert summary.rows == 3 and len(summary.skipped) == 4
    reasons = {skip.path.rpartition("#")[2]: skip.reason for skip in summary.skipped}
    assert reasons.pop("orphan") == "no image (only .txt)"

    folder = tmp_path / "same-files"
    folder.mkdir()
    for name, data in members[:-1]:
        (folder / name).write_bytes(data)
    with picsearch.open(tmp_path / "local.db", model="tiny") as library:
        local = library.index(folder)
    assert local.added == 3
    assert reasons == {Path(skip.path).name: skip.reason for skip in local.skipped}
    manifest = read_manifest(str(tmp_path / "emb"))
    assert manifest["rows"] == 3 and manifest["skipped"] == 4


def test_spark_engine_without_pyspark_says_what_to_install(monkeypatch) -> None:
    from picsearch.spark.session import pyspark

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(MissingDependency, match=r"pip install 'picsearch\[spark\]'"):
        pyspark()


@pytest.fixture(scope="module")
def phone_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a phone and a camera leave: JPEGs with EXIF (time and offset, GPS, camera),
    a HEIC with its Live Photo movie, an AVIF, a RAW+JPEG pair, a RAW alone, a future date, notes,
    and a name that starts with an underscore as some cameras write."""
    pillow_heif = pytest.importorskip("pillow_heif")
    folder = tmp_path_factory.mktemp("phone") / "DCIM"
    taken = {"taken": "2019:07:14 18:30:00", "offset": "+01:00"}
    write(folder / "lisbon.jpg", exif_jpeg(colour="red", make="Canon", gps=LISBON, **taken))
    write(folder / "paris.jpg", exif_jpeg(colour="blue", taken="2021:03:02 09:00:00", gps=PARIS))
    write(folder / "future.jpg", exif_jpeg(colour="green", taken="2099:01:01 00:00:00"))
    live = Image.open(io.BytesIO(exif_jpeg(colour="yellow", make="Apple", gps=PARIS, **taken)))
    heic = io.BytesIO()
    pillow_heif.from_pillow(live).save(heic, exif=live.getexif().tobytes(), quality=50)
    write(folder / "IMG_0002.HEIC", heic.getvalue())
    write(folder / "IMG_0002.MOV", b"a live photo's movie")
    write(folder / "IMG_0003.JPG", exif_jpeg(colour="white", make="NIKON", model="NIKON Z 6"))
    write(folder / "IMG_0003.dng", dng())
    write(folder / "raw" / "alone.dng", dng())
    write(folder / "_DSC0004.JPG", exif_jpeg(colour="black", make="SONY"))  # no hidden file
    write(folder / "green.avif", encoded(Image.new("RGB", (64, 48), (20, 200, 40)), "AVIF"))
    write(folder / "notes.txt", b"not a photo")
    return folder


def _library_rows(db: Path) -> dict[str, tuple[object, ...]]:
    """path -> (metadata, when/where/with what, concepts, words, visual vector) of each photo."""
    catalog = Catalog(db, create=False)
    try:
        ids = {os.fsdecode(path): state[0] for path, state in catalog.file_states().items()}
        rows = catalog.rows(ids.values())
        concepts = catalog.concepts.get(ids.values())
        found, vectors = catalog.space_vectors("visual", 48)
        visual = dict(zip(found.tolist(), vectors, strict=True))
        return {
            path: (
                {k: v for k, v in rows[i].metadata.items() if k != "caption"},
                rows[i].photo,
                concepts[i].concepts,
                concepts[i].detectors,
                visual[i],
            )
            for path, i in ids.items()
        }
    finally:
        catalog.close()


def test_a_phone_and_camera_folder_builds_the_same_library_on_spark_as_index(
    spark, phone_folder, tmp_path, capsys
) -> None:
    out, db = str(tmp_path / "emb"), tmp_path / "spark.db"
    argv = ["embed", str(phone_folder), "--out", out, "--model", "tiny", "--engine", "spark"]
    assert main(argv) == 0
    said = capsys.readouterr().err
    assert "8 images, skipped 0" in said and "; ignored: 1 .txt" in said
    assert "1 broken metadata fields left out" in said  # the year 2099
    assert main(["build", "--embeddings", out, "--db", str(db), "--engine", "spark"]) == 0
    assert "ignored: 1 .txt; 1 broken metadata fields left out" in capsys.readouterr().err
    with picsearch.open(tmp_path / "local.db", model="tiny") as library:
        local = library.index(phone_folder)
    assert (local.added, local.ignored, local.metadata_dropped) == (8, {".txt": 1}, 1)

    built, indexed = _library_rows(db), _library_rows(tmp_path / "local.db")
    assert sorted(built) == sorted(indexed)
    for path, (*stored, vector) in built.items():
        assert stored == list(indexed[path][:-1]), path
        np.testing.assert_allclose(vector, indexed[path][-1], atol=1e-5)
    metadata, photo, concepts, detectors, _ = built[str(phone_folder / "IMG_0002.HEIC")]
    assert metadata["linked"] == [str(phone_folder / "IMG_0002.MOV")]
    assert (photo["taken"], photo["place"]["city"]) == ("2019-07-14T18:30:00+01:00", "Paris")
    assert detectors == ("pixels", "faces") and concepts[0].name == "color:yellow"
    assert built[str(phone_folder / "IMG_0003.JPG")][0]["linked"] == [
        str(phone_folder / "IMG_0003.dng")
    ]
    assert built[str(phone_folder / "lisbon.jpg")][1]["place"]["country"] == "Portugal"

    # the filters read what the tasks found: concepts, place and camera
    for name in ("spark.db", "local.db"):
        with picsearch.open(tmp_path / name, create=False) as library:
            assert [Path(h.path).name for h in library.search(color="yellow")] == ["IMG_0002.HEIC"]
            assert [Path(h.path).name for h in library.search(place="lisbon")] == ["lisbon.jpg"]
            assert [Path(h.path).name for h in library.search(camera="nikon z")] == ["IMG_0003.JPG"]


def test_embed_runs_the_concepts_level_asked_for_and_keeps_it(phone_folder, tmp_path) -> None:
    out = tmp_path / "emb"
    first = embed([phone_folder], out, model="tiny", concepts="off")
    again = embed([phone_folder], out, model="tiny")  # no level: the one out was embedded at
    assert (first.written, again.kept, again.concepts) == (1, 1, "off")
    summary = build(out, tmp_path / "off.db")
    assert summary.ignored == {".txt": 1}
    with picsearch.open(tmp_path / "off.db", create=False) as library:
        with pytest.raises(picsearch.InvalidInput, match="looked at for color"):
            library.search(color="yellow")
    assert embed([phone_folder], out, model="tiny", concepts="fast").written == 1
    build(out, tmp_path / "fast.db")
    with picsearch.open(tmp_path / "fast.db", create=False) as library:
        assert [Path(h.path).name for h in library.search(color="yellow")] == ["IMG_0002.HEIC"]
