"""Export a library as two TensorFlow Lite searchers the Task Library opens.

``text_searcher.tflite`` holds the text embedder and an index of the joint space,
``image_searcher.tflite`` the image embedder and an index of the image space (the
model's image-only space where it has one); both carry each item's metadata. The
encoders' ONNX graphs are converted by onnx2tf and the index and metadata attached by
tflite-support, each in its own venv (``env``): picsearch hands them files in a
temporary folder (ONNX graphs, ``.npy`` arrays, a JSON job).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..display import path_text
from ..errors import InvalidInput, LibraryError
from ..library import Library, row_metadata
from ..searcher.export import exportable_encoder
from ..version import __version__
from . import models
from .env import ConverterEnv, find_env
from .index import IndexArrays, build_index, check_file_size, item_metadata
from .options import DEFAULT_MAX_TOKENS, ScannOptions

__all__ = ["TfliteReport", "export_tflite", "write_index_file", "SEARCHERS", "FILE_NAMES"]

log = logging.getLogger(__name__)

SEARCHERS = ("text", "image")
FILE_NAMES = {"text": "text_searcher.tflite", "image": "image_searcher.tflite"}


@dataclass(frozen=True)
class TfliteReport:
    """What was written: each file's size, the index options, the time it took."""

    folder: str
    items: int
    files: dict[str, int]
    spaces: dict[str, str]
    options: dict[str, Any]
    metadata_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        files = ", ".join(
            f"{FILE_NAMES[kind]} {size / 1e6:.1f} MB ({self.spaces[kind]} space)"
            for kind, size in self.files.items()
        )
        pq = (
            f"product quantization {self.options['dims_per_block']} dims per block"
            if self.options["product_quantization"]
            else "float vectors"
        )
        return (
            f"{self.folder}: {files}; {self.items} items, {self.options['partitions']} "
            f"partitions ({self.options['partitions_to_search']} searched), {pq}, "
            f"{self.options['distance']}; {self.seconds:.0f} s"
        )


def export_tflite(
    library: Library,
    folder: str | os.PathLike[str],
    *,
    options: ScannOptions | None = None,
    metadata_field: str | None = None,
    searchers: tuple[str, ...] = SEARCHERS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    env: ConverterEnv | None = None,
) -> TfliteReport:
    """Write ``library`` as TFLite searchers into ``folder`` (created if needed)."""
    unknown = [s for s in searchers if s not in SEARCHERS]
    if unknown or not searchers:
        raise InvalidInput(f"searchers must be some of {', '.join(SEARCHERS)}, not {unknown}")
    encoder = exportable_encoder(library)
    env = env or find_env()
    started = time.perf_counter()
    ids, items = _items(library)
    blob, offsets = item_metadata(items, field=metadata_field)
    target = Path(folder).expanduser()
    with tempfile.TemporaryDirectory(prefix="picsearch-tflite-") as tmp:
        work = Path(tmp)
        job = _Job(work, library, encoder, max_tokens)
        job.write_metadata(blob, offsets)
        checked = job.add_searchers(searchers, ids, options or ScannOptions())
        job.run(env, target)
    files = {kind: (target / FILE_NAMES[kind]).stat().st_size for kind in searchers}
    return TfliteReport(
        folder=str(target),
        items=len(ids),
        files=files,
        spaces={kind: job.spaces[kind] for kind in searchers},
        options=asdict(checked),
        metadata_bytes=len(blob),
        seconds=round(time.perf_counter() - started, 1),
    )


def _items(library: Library) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Every item's id and what its metadata says: id, path, size, user fields..."""
    ids = library.ids()
    rows = library.rows(ids)
    items = []
    for i in ids.tolist():
        fields = {k: v for k, v in row_metadata(rows[i]).items() if k not in ("path", "id")}
        items.append({"id": i, "path": path_text(rows[i].path), **fields})
    return ids, items


class _Job:
    """The temporary folder handed to the converter venvs, and what it holds."""

    def __init__(self, work: Path, library: Library, encoder: Any, max_tokens: int) -> None:
        self.work = work
        self.library = library
        self.model = library.model
        self.description = encoder.export_query_model(_folder(work / "onnx"))
        self.tokens = min(int(getattr(encoder, "max_tokens", max_tokens)), max_tokens)
        self.convert: list[dict[str, Any]] = []
        self.searchers: list[dict[str, Any]] = []
        self.spaces: dict[str, str] = {}
        self.model_bytes = 0

    def write_metadata(self, blob: bytes, offsets: np.ndarray) -> None:
        (self.work / "metadata.bin").write_bytes(blob)
        np.save(self.work / "offsets.npy", offsets)
        self.metadata_bytes = len(blob)

    def add_searchers(
        self, searchers: tuple[str, ...], ids: np.ndarray, options: ScannOptions
    ) -> ScannOptions:
        checked = options
        for kind in searchers:
            space, extra = self._text_graph() if kind == "text" else self._image_graph()
            checked = self._add_index(kind, space, ids, options, extra)
        return checked

    def _text_graph(self) -> tuple[str, dict[str, Any]]:
        onnx, work, model = self.work / "onnx", self.work, self.model
        models.write_vocab(onnx / "tokenizer.json", work / "vocab.txt", model=model)
        models.text_for_tflite(
            onnx / "text.onnx", work / "text.onnx", tokens=self.tokens, model=model
        )
        return "joint", {"vocab": "vocab.txt"}

    def _image_graph(self) -> tuple[str, dict[str, Any]]:
        outputs = self.description["image"]["outputs"]
        # The image-only space where the model has one: it is what image search uses.
        space = "visual" if "visual" in outputs else "joint"
        size = models.image_for_tflite(
            self.work / "onnx" / "image.onnx",
            self.work / "image.onnx",
            output=space,
            preprocess=self.description["image"]["preprocess"],
            model=self.model,
        )
        return space, {"image": {"mean": size.mean, "std": size.std}}

    def _add_index(
        self,
        kind: str,
        space: str,
        ids: np.ndarray,
        options: ScannOptions,
        extra: dict[str, Any],
    ) -> ScannOptions:
        space_ids, vectors = self.library.vectors(space)
        if not np.array_equal(space_ids, ids):
            raise LibraryError(
                f"{self.library.path}: items changed during the export: export again"
            )
        checked = options.checked(items=len(ids), dim=vectors.shape[1])
        arrays = build_index(vectors, checked)
        check_file_size(
            kind,
            model_bytes=(self.work / f"{kind}.onnx").stat().st_size,
            index_bytes=arrays.nbytes,
            metadata_bytes=self.metadata_bytes,
        )
        self.spaces[kind] = space
        self.convert.append(
            {"onnx": str(self.work / f"{kind}.onnx"), "tflite": str(self.work / f"{kind}.tflite")}
            | {"image": kind == "image"}
        )
        self.searchers.append(
            {
                "kind": kind,
                "name": f"picsearch {kind} searcher",
                "description": f"{self.model}: {kind} embedder and a ScaNN index of "
                f"{len(ids)} items ({space} space)",
                "model": f"{kind}.tflite",
                "output": str(self.work / FILE_NAMES[kind]),
                "distance": checked.distance,
                "search_fraction": (checked.partitions_to_search or 1) / (checked.partitions or 1),
                "userinfo": json.dumps(
                    {"picsearch": __version__, "model": self.model, "space": space}
                ),
                "metadata": "metadata.bin",
                "offsets": "offsets.npy",
                **self._save_arrays(kind, arrays),
                **extra,
            }
        )
        return checked

    def _save_arrays(self, kind: str, arrays: IndexArrays) -> dict[str, str | None]:
        names: dict[str, str | None] = {}
        for name in ("vectors", "assignment", "centroids", "codebooks", "codes"):
            value = getattr(arrays, name)
            names[name] = None if value is None else f"{kind}_{name}.npy"
            if value is not None:
                np.save(self.work / f"{kind}_{name}.npy", value)
        return names

    def run(self, env: ConverterEnv, target: Path) -> None:
        convert_job = self.work / "convert.json"
        convert_job.write_text(json.dumps({"models": self.convert}))
        kinds = " and ".join(entry["kind"] for entry in self.searchers)
        # The default model's text encoder alone takes minutes: say so before the wait.
        log.info("converting the %s side of '%s' with onnx2tf (minutes)", kinds, self.model)
        env.run("convert", "convert_job", str(convert_job), doing=f"converting '{self.model}'")
        metadata_job = self.work / "metadata.json"
        metadata_job.write_text(json.dumps({"searchers": self.searchers}))
        log.info("writing the index and item metadata into the .tflite files")
        env.run("metadata", "metadata_job", str(metadata_job), doing="writing the index")
        target.mkdir(parents=True, exist_ok=True)
        for entry in self.searchers:
            written = Path(entry["output"])
            # Copied beside the target, then renamed: a reader never sees half a file.
            partial = target / f".{written.name}.{os.getpid()}.partial"
            try:
                shutil.copyfile(written, partial)
                os.replace(partial, target / written.name)
            finally:
                partial.unlink(missing_ok=True)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_index_file(
    vectors: np.ndarray,
    path: str | os.PathLike[str],
    *,
    items: list[dict[str, Any]],
    options: ScannOptions | None = None,
    env: ConverterEnv | None = None,
) -> ScannOptions:
    """An index file alone, for the Task Library's ``SearchOptions(index_file_name=...)``:
    ``vectors`` (one row per item) with ``items`` as their metadata; the options used."""
    env = env or find_env()
    checked = (options or ScannOptions()).checked(items=len(vectors), dim=vectors.shape[1])
    arrays = build_index(vectors, checked)
    blob, offsets = item_metadata(items, field=None)
    with tempfile.TemporaryDirectory(prefix="picsearch-tflite-index-") as tmp:
        work = Path(tmp)
        (work / "metadata.bin").write_bytes(blob)
        np.save(work / "offsets.npy", offsets)
        entry: dict[str, Any] = {"kind": "index", "output": str(Path(path).resolve())}
        entry |= {"metadata": "metadata.bin", "offsets": "offsets.npy", "userinfo": "{}"}
        entry |= {"distance": checked.distance}
        entry["search_fraction"] = (checked.partitions_to_search or 1) / (checked.partitions or 1)
        for name in ("vectors", "assignment", "centroids", "codebooks", "codes"):
            value = getattr(arrays, name)
            entry[name] = None if value is None else f"{name}.npy"
            if value is not None:
                np.save(work / f"{name}.npy", value)
        (work / "job.json").write_text(json.dumps({"searchers": [entry]}))
        env.run("metadata", "metadata_job", str(work / "job.json"), doing="writing the index")
    return checked
