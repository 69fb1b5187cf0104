"""Export a library as one searcher file, and measure what the export changed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import ann
from ..concepts import Stored
from ..display import path_text
from ..encoders import ExportsQueryModel
from ..errors import InvalidInput, LibraryError, require
from ..library import Library, row_metadata
from ..version import __version__
from .bundle import FORMAT, FORMAT_VERSION, write_bundle
from .manifest import QUANTIZE

__all__ = ["ExportReport", "export_searcher", "exportable_encoder", "QUANTIZE"]
#: How many built-in text probes and library photos the export checks itself with.
TEXT_PROBES = 100
IMAGE_PROBES = 20


@dataclass(frozen=True)
class ExportReport:
    """What was written, and how the searcher's answers compare with the library's."""

    path: str
    bytes: int
    items: int
    quantize: str
    encoder_bytes: int
    index_bytes: int
    text_recall_at_10: float
    text_same_order: float
    image_recall_at_10: float | None
    probes: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        image = (
            "no image probes (photos not on disk)"
            if self.image_recall_at_10 is None
            else f"image recall@10 {self.image_recall_at_10:.3f}"
        )
        return (
            f"{self.path}: {self.items} items, {self.bytes / 1e6:.1f} MB "
            f"({self.bytes / max(self.items, 1) / 1e3:.1f} kB per item; encoders "
            f"{self.encoder_bytes / 1e6:.1f} MB, index {self.index_bytes / 1e6:.2f} MB), "
            f"quantize {self.quantize}; against the library: text recall@10 "
            f"{self.text_recall_at_10:.3f} ({self.text_same_order:.0%} in the same order, "
            f"{self.probes['text']} probes), {image}"
        )


def exportable_encoder(library: Library) -> ExportsQueryModel:
    """The library's encoder, once the library has photos and its model can be written
    out as query graphs (refused in one line otherwise)."""
    if not len(library):
        raise LibraryError(f"{library.path} is empty: index some photos before exporting")
    encoder = library.encoder
    if not isinstance(encoder, ExportsQueryModel):
        raise InvalidInput(f"model '{library.model}' cannot be exported to a searcher yet")
    return encoder


def export_searcher(
    library: Library, output: str | os.PathLike[str], *, quantize: str = "none"
) -> ExportReport:
    """Write ``library`` (its query encoders, index and item metadata) to one file."""
    if quantize not in QUANTIZE:
        raise InvalidInput(f"quantize={quantize!r} must be one of {', '.join(QUANTIZE)}")
    encoder = exportable_encoder(library)
    started = time.perf_counter()
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="picsearch-export-") as tmp:
        folder = Path(tmp)
        encoders = _write_encoders(encoder, folder / "encoders", quantize)
        spaces = _write_indexes(library, folder / "index", quantize)
        count = _write_items(library, folder / "items")
        parts = {
            p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()
        }
        manifest = _manifest(library, encoders, spaces, count, quantize)
        partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
        try:
            write_bundle(partial, manifest, parts)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        sizes = {name: path.stat().st_size for name, path in parts.items()}
    return _report(library, output, quantize, sizes, count, time.perf_counter() - started)


def _write_encoders(encoder: Any, folder: Path, quantize: str) -> dict[str, Any]:
    folder.mkdir(parents=True)
    description = encoder.export_query_model(folder)
    if quantize == "int8":
        # The text encoder only: dynamic int8 of the CNN's depthwise convolutions halved
        # image recall@10 against the float model (0.50) in benchmarks/searcher.py.
        _quantize_graph(folder / description["text"]["onnx"])
        description["text"]["weights"] = "int8"
    return description


def _quantize_graph(path: Path) -> None:
    """Dynamic int8 quantization of the weights (activations stay float)."""
    require("onnx", package="onnx", extra="default", purpose="int8 searcher export")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = path.with_name(path.stem + ".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice lines are not for our users
    try:
        # Per-channel scales: recall@10 against float 0.87 instead of 0.74 per tensor.
        quantize_dynamic(str(path), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    os.replace(target, path)


def _write_indexes(library: Library, folder: Path, quantize: str) -> dict[str, Any]:
    spaces = {}
    for space in library.space_names():
        index = library.space_index(space)
        if quantize != "none":
            index = _int8_copy(index)
        index.save(folder / space)
        spaces[space] = {
            "folder": f"index/{space}",
            "backend": index.backend,
            "size": len(index),
            "bytes_per_vector": round(index.nbytes / max(len(index), 1), 1),
        }
    return spaces


def _int8_copy(index: ann.AnnIndex) -> ann.AnnIndex:
    """The same index with int8 vectors: int8 codes for exact search, int8 re-ranking else."""
    if index.backend != "exact" and index.options.reorder_dtype == "int8":
        return index  # already int8 where it keeps vectors
    vectors, ids = index.vectors_and_ids()
    if index.backend == "exact":
        options = ann.IndexOptions(backend="exact", quantization="int8")
    else:
        options = index.options.replace(reorder_dtype="int8")
    return ann.build(vectors, ids, options)


def _write_items(library: Library, folder: Path) -> int:
    """Each item's id and metadata, and what the search filters read: its file time and
    what the concept bank saw in it (see ``items``)."""
    folder.mkdir(parents=True)
    ids = library.ids()
    rows = library.rows(ids)
    stored = library.stored_concepts(ids.tolist())
    items, concepts = [], []
    for i in ids.tolist():
        # "path" is the photo's own: an application field of that name does not replace it.
        fields = {k: v for k, v in row_metadata(rows[i]).items() if k != "path"}
        items.append({"path": path_text(rows[i].path), **fields})
        concepts.append(_seen(stored[i]) if i in stored else None)
    np.save(folder / "ids.npy", ids.astype(np.int64))
    np.save(folder / "mtime_ns.npy", np.array([rows[i].mtime_ns for i in ids.tolist()], np.int64))
    (folder / "metadata.json").write_text(json.dumps(items, ensure_ascii=False))
    (folder / "concepts.json").write_text(json.dumps(concepts, ensure_ascii=False))
    return len(ids)


def _seen(stored: Stored) -> dict[str, Any]:
    return {
        "detectors": list(stored.detectors),
        "concepts": stored.confidences(),
        "text": stored.text,
    }


def _manifest(
    library: Library, encoders: dict[str, Any], spaces: dict[str, Any], count: int, quantize: str
) -> dict[str, Any]:
    info = library.info()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "picsearch_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "spec": info.model,
            "id": info.model_id,
            "dims": info.dims,
            "weak_cutoff": library.weak_cutoff(),
        },
        "distance": "dot",
        "quantize": quantize,
        "encoders": encoders,
        "spaces": spaces,
        "items": count,
    }


def _report(
    library: Library,
    output: Path,
    quantize: str,
    sizes: dict[str, int],
    count: int,
    seconds: float,
) -> ExportReport:
    from .check import compare_with_library

    checks = compare_with_library(library, output, text_probes=TEXT_PROBES, images=IMAGE_PROBES)
    return ExportReport(
        path=str(output),
        bytes=output.stat().st_size,
        items=count,
        quantize=quantize,
        encoder_bytes=sum(v for k, v in sizes.items() if k.startswith("encoders/")),
        index_bytes=sum(v for k, v in sizes.items() if k.startswith("index/")),
        seconds=round(seconds, 2),
        **checks,
    )
