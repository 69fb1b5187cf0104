"""A ScaNN index and Task Library metadata into a converted model; runs in the
``metadata`` venv (tflite-support 0.4.4, protobuf 3), not in picsearch's.

Usage: python metadata_job.py JOB.json. Each entry of ``searchers`` names a converted
model, the arrays of its index (``.npy`` files picsearch wrote) and the searcher file to
write. This script imports nothing from picsearch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
from tensorflow_lite_support.metadata.python.metadata_writers import (
    metadata_info,
    metadata_writer,
    writer_utils,
)
from tensorflow_lite_support.scann_ondevice.cc.core import serialized_searcher_pb2 as scann
from tensorflow_lite_support.scann_ondevice.cc.python import index_builder

_DISTANCE = {"dot_product": scann.DOT_PRODUCT, "squared_l2": scann.SQUARED_L2_DISTANCE}


def index_config(entry: dict[str, Any], folder: Path) -> Any:
    """The ScannOnDeviceConfig: leaf centres, the fraction searched, PQ codebooks."""
    distance = _DISTANCE[entry["distance"]]
    config = scann.ScannOnDeviceConfig(query_distance=distance)
    config.partitioner.search_fraction = float(entry["search_fraction"])
    config.partitioner.query_distance = distance
    for centre in np.load(folder / entry["centroids"]):
        config.partitioner.leaf.add().dimension.extend(centre.tolist())
    if entry.get("codebooks"):
        hashing = config.indexer.asymmetric_hashing
        hashing.query_distance = distance
        hashing.lookup_type = scann.AsymmetricHashingProto.FLOAT
        for book in np.load(folder / entry["codebooks"]):
            subspace = hashing.subspace.add()
            for centre in book:
                subspace.entry.add().dimension.extend(centre.tolist())
    return config


def write_index(entry: dict[str, Any], folder: Path, target: Path) -> None:
    vectors = np.ascontiguousarray(np.load(folder / entry["vectors"]), dtype=np.float32)
    assignment = np.load(folder / entry["assignment"]).astype(np.int32).tolist()
    blob = (folder / entry["metadata"]).read_bytes()
    offsets = np.load(folder / entry["offsets"]).tolist()
    metadata = [blob[start:end] for start, end in zip(offsets[:-1], offsets[1:], strict=True)]
    keywords: dict[str, Any] = {}
    dimension = int(vectors.shape[1])
    if entry.get("codes"):
        codes = np.load(folder / entry["codes"])
        keywords["hashed_database"] = np.ascontiguousarray(codes, dtype=np.uint8).ravel()
        dimension = int(codes.shape[1])  # the builder counts items by code length
    else:
        # A C-contiguous float32 array: a Python list here writes corrupted vectors.
        keywords["float_database"] = vectors.ravel()
    index = index_builder.create_serialized_index_file(
        embedding_dim=dimension,
        serialized_config=index_config(entry, folder).SerializeToString(),
        userinfo=entry["userinfo"],
        partition_assignment=assignment,
        metadata=metadata,
        compression=False,
        **keywords,
    )
    target.write_bytes(index)


def _index_md(index: Path) -> Any:
    return metadata_info.TensorMd(
        name="embedding",
        description="The query's embedding; the ScaNN index of the items is attached.",
        associated_files=[
            metadata_info.AssociatedFileMd(
                file_path=str(index), file_type=fb.AssociatedFileType.SCANN_INDEX_FILE
            )
        ],
    )


def image_searcher(entry: dict[str, Any], model: bytes, index: Path) -> bytes:
    image = metadata_info.InputImageTensorMd(
        name="image",
        description="The query photo, resized to the input size.",
        norm_mean=entry["image"]["mean"],
        norm_std=entry["image"]["std"],
        color_space_type=fb.ColorSpaceType.RGB,
        tensor_type=writer_utils.get_input_tensor_types(model)[0],
    )
    writer = metadata_writer.MetadataWriter.create_from_metadata(
        model,
        model_metadata=_general(entry).create_metadata(),
        input_metadata=[image.create_metadata()],
        output_metadata=[_index_md(index).create_metadata()],
        associated_files=[str(index)],
    )
    return writer.populate()


def text_searcher(entry: dict[str, Any], model: bytes, index: Path, vocab: Path) -> bytes:
    names = writer_utils.get_input_tensor_names(model)
    # Converted tensors are named like serving_default_input_ids:0, in no fixed order.
    ids, mask, segment = (
        next(n for n in names if wanted in n)
        for wanted in ("input_ids", "attention_mask", "segment_ids")
    )
    bert = metadata_info.BertInputTensorsMd(
        model, ids, mask, segment, tokenizer_md=metadata_info.BertTokenizerMd(str(vocab))
    )
    output = _index_md(index)
    writer = metadata_writer.MetadataWriter.create_from_metadata(
        model,
        model_metadata=_general(entry).create_metadata(),
        input_metadata=bert.create_input_tesnor_metadata(),
        output_metadata=[output.create_metadata()],
        associated_files=[*bert.get_tokenizer_associated_files(), str(index)],
        input_process_units=bert.create_input_process_unit_metadata(),
    )
    return writer.populate()


def _general(entry: dict[str, Any]) -> Any:
    return metadata_info.GeneralMd(name=entry["name"], description=entry["description"])


def build(entry: dict[str, Any], folder: Path) -> None:
    if entry["kind"] == "index":  # an index file alone (SearchOptions.index_file_name)
        write_index(entry, folder, Path(entry["output"]))
        return
    index = folder / f"{entry['kind']}_index" / "on_device_scann_index.ldb"
    index.parent.mkdir(exist_ok=True)
    write_index(entry, folder, index)
    model = (folder / entry["model"]).read_bytes()
    if entry["kind"] == "text":
        searcher = text_searcher(entry, model, index, folder / entry["vocab"])
    else:
        searcher = image_searcher(entry, model, index)
    Path(entry["output"]).write_bytes(searcher)


def main() -> None:
    job_path = Path(sys.argv[1])
    job = json.loads(job_path.read_text())
    for entry in job["searchers"]:
        build(entry, job_path.parent)


if __name__ == "__main__":
    main()
