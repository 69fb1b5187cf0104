"""The arrays of an on-device ScaNN index, computed with numpy: leaf centres and each
item's leaf (k-means), product-quantization codebooks and codes, and item metadata.

The metadata venv's ``metadata_job`` turns them into the LevelDB table the Task
Library reads; nothing here needs TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .options import ScannOptions

__all__ = ["IndexArrays", "build_index", "item_metadata", "check_file_size", "MAX_FILE_BYTES"]

#: A .tflite file is one flatbuffer, and flatbuffers stop at 2 GiB; keep a margin.
MAX_FILE_BYTES = 2**31 - 2**24
#: Centres per product-quantization codebook (ScaNN's on-device codes are one byte each;
#: 16 centres is ScaNN's own choice for its asymmetric hashing).
PQ_CENTRES = 16
_TRAIN_PER_LEAF = 64
_ITERATIONS = 12
_SEED = 0


@dataclass(frozen=True)
class IndexArrays:
    """What the index holds: ``vectors`` (float32, C-contiguous), ``assignment`` (leaf of
    each item), ``centroids``, and with product quantization ``codebooks`` (subspaces x
    16 x dims per block) and ``codes`` (items x subspaces, uint8)."""

    vectors: np.ndarray
    assignment: np.ndarray
    centroids: np.ndarray
    codebooks: np.ndarray | None
    codes: np.ndarray | None

    @property
    def nbytes(self) -> int:
        stored = self.codes if self.codes is not None else self.vectors
        return int(stored.nbytes + self.assignment.nbytes + self.centroids.nbytes)


def build_index(vectors: np.ndarray, options: ScannOptions) -> IndexArrays:
    """Partition ``vectors`` into ``options.partitions`` leaves (and quantize them)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    leaves = int(options.partitions or 1)
    spherical = options.distance == "dot_product"
    centroids = _kmeans(vectors, leaves, spherical=spherical)
    assignment = _nearest(vectors, centroids, spherical=spherical)
    codebooks = codes = None
    if options.product_quantization:
        codebooks, codes = _product_quantize(vectors, options.dims_per_block)
    return IndexArrays(vectors, assignment.astype(np.int32), centroids, codebooks, codes)


def _kmeans(vectors: np.ndarray, k: int, *, spherical: bool) -> np.ndarray:
    """Lloyd's k-means on a sample; spherical (unit centres) when leaves are chosen by dot
    product, so that no leaf wins by the length of its centre."""
    rng = np.random.default_rng(_SEED)
    if k == 1:
        centre = vectors.mean(axis=0, keepdims=True)
        return _unit(centre) if spherical else centre
    sample = vectors[rng.permutation(len(vectors))[: max(k * _TRAIN_PER_LEAF, k)]]
    centres = sample[rng.choice(len(sample), size=k, replace=False)].copy()
    for _ in range(_ITERATIONS):
        nearest = _nearest(sample, centres, spherical=spherical)
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, sample)
        counts = np.bincount(nearest, minlength=k)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
        # An empty leaf restarts at the sample point furthest from its own centre.
        if not filled.all():
            far = np.argsort(_scores(sample, centres, spherical).max(axis=1))[: (~filled).sum()]
            centres[~filled] = sample[far]
        if spherical:
            centres = _unit(centres)
    return centres.astype(np.float32)


def _scores(vectors: np.ndarray, centres: np.ndarray, spherical: bool) -> np.ndarray:
    """Higher is nearer: dot products, or minus squared L2 distances up to a constant."""
    dots = vectors @ centres.T
    if spherical:
        return dots
    return dots - 0.5 * (centres * centres).sum(axis=1)[None, :]


def _nearest(vectors: np.ndarray, centres: np.ndarray, *, spherical: bool) -> np.ndarray:
    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), 8192):
        block = vectors[start : start + 8192]
        out[start : start + 8192] = _scores(block, centres, spherical).argmax(axis=1)
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _product_quantize(vectors: np.ndarray, per_block: int) -> tuple[np.ndarray, np.ndarray]:
    """16-centre codebooks per block of ``per_block`` dimensions, and each item's codes."""
    blocks = vectors.shape[1] // per_block
    books = np.zeros((blocks, PQ_CENTRES, per_block), dtype=np.float32)
    codes = np.zeros((len(vectors), blocks), dtype=np.uint8)
    for b in range(blocks):
        part = np.ascontiguousarray(vectors[:, b * per_block : (b + 1) * per_block])
        k = min(PQ_CENTRES, len(part))
        books[b, :k] = _kmeans(part, k, spherical=False)
        codes[:, b] = _nearest(part, books[b, :k], spherical=False)
    return books, codes


def item_metadata(items: list[dict[str, Any]], *, field: str | None) -> tuple[bytes, np.ndarray]:
    """Each item's metadata bytes, concatenated, and the offsets between them (n + 1):
    its JSON, or the one ``field`` (a string as it is, else its JSON; empty where the
    item lacks it)."""
    if field is not None and not any(field in item for item in items):
        raise InvalidInput(
            f"no item has a metadata field {field!r}: pick one of "
            f"{', '.join(sorted({k for item in items for k in item})[:12])}"
        )
    parts = [_metadata_bytes(item, field) for item in items]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return b"".join(parts), offsets


def _metadata_bytes(item: dict[str, Any], field: str | None) -> bytes:
    if field is None:
        return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    value = item.get(field)
    if value is None:
        return b""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.encode("utf-8")


def check_file_size(kind: str, *, model_bytes: int, index_bytes: int, metadata_bytes: int) -> None:
    """InvalidInput when a searcher file would pass the 2 GiB a flatbuffer can hold."""
    total = model_bytes + index_bytes + metadata_bytes
    if total > MAX_FILE_BYTES:
        raise InvalidInput(
            f"the {kind} searcher would hold {total / 2**30:.2f} GiB "
            f"({metadata_bytes / 2**20:.0f} MiB of item metadata): a .tflite file holds under "
            "2 GiB; keep one field with --tflite-metadata FIELD, or use --tflite-pq"
        )
