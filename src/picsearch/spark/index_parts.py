"""The index of a large space, built autofaiss style: train on a sample, add in parallel, merge.

The driver trains an empty FAISS IVF-PQ index (k-means leaves and 4-bit
codes, what picsearch's ``faiss`` backend searches) on a sample of the
vectors and puts it beside the shards. Each shard's task then adds the
shard's vectors to its own copy of it (coarse assignment and encoding: the
costly part), and scores the tuning queries against the shard exactly. The
driver merges the copies' inverted lists and the per-shard top-k, and writes
the result in the ``picsearch.ann`` format, where the library finds it.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..ann import IndexOptions, Tree
from ..ann.auto import K
from ..ann.base import FORMAT_VERSION
from ..ann.options import AH, default_num_leaves
from ..ann.store import Float32Store, Int8Store, merge_topk, scan_topk
from ..errors import InvalidInput, require
from . import shards, storage

__all__ = [
    "faiss_options",
    "train",
    "shard_part",
    "merge_parts",
    "write_index",
    "min_train",
    "sample_size",
    "tree_of",
]

#: Training vectors per leaf (FAISS asks for at least 39), and at least this many in all.
TRAIN_PER_LEAF = 50
TRAIN_MIN = 20_000

_CACHE: dict[str, Any] = {}  # per process: trained indexes and queries, by URI


def _faiss() -> Any:
    return require("faiss", package="faiss-cpu", extra="ann", purpose="building the index")


def faiss_options(n: int, dim: int, requested: IndexOptions) -> IndexOptions:
    """The FAISS options for n vectors: the request's, sized from the data where it left them."""
    leaves = requested.tree.num_leaves if requested.tree else default_num_leaves(n)
    tree = requested.tree or Tree(leaves, max(1, math.ceil(leaves * 0.05)))
    quantization = requested.quantization or AH(2 if dim % 2 == 0 else 1, 0.2)
    if isinstance(quantization, AH) and dim % quantization.dims_per_block:
        raise InvalidInput(f"dims_per_block={quantization.dims_per_block} must divide dim={dim}")
    return IndexOptions(
        backend="faiss",
        distance=requested.distance,
        tree=tree,
        quantization=quantization,
        reorder=100 if requested.reorder is None else requested.reorder,
        reorder_dtype=requested.reorder_dtype,
        recall_target=requested.recall_target,
        rebuild_threshold=requested.rebuild_threshold,
        seed=requested.seed,
    )


def tree_of(options: IndexOptions) -> Tree:
    """The leaves of options ``faiss_options`` made (it always sets them)."""
    if options.tree is None:
        raise ValueError("shard-parallel FAISS options have a tree")
    return options.tree


def min_train(options: IndexOptions) -> int:
    """Vectors the engine needs before it can be trained (as the faiss backend asks)."""
    return max(1000, 4 * tree_of(options).num_leaves)


def sample_size(n: int, options: IndexOptions) -> int:
    return min(n, max(TRAIN_PER_LEAF * tree_of(options).num_leaves, TRAIN_MIN))


def _factory(dim: int, options: IndexOptions) -> str:
    q = options.quantization
    if isinstance(q, AH):
        # Plain 4-bit PQ lists merge safely; write_index packs them for fast-scan.
        body = f"PQ{dim // q.dims_per_block}x4"
    else:
        body = "SQ8" if q == "int8" else "Flat"
    return f"IVF{tree_of(options).num_leaves},{body}"


def train(sample: np.ndarray, options: IndexOptions) -> bytes:
    """An empty index trained on ``sample``, serialized."""
    faiss = _faiss()
    dim = sample.shape[1]
    index = faiss.index_factory(dim, _factory(dim, options), _ip(faiss))
    index.cp.seed = options.seed
    index.cp.min_points_per_centroid = 1  # small samples are fine; no warning for them
    if isinstance(options.quantization, AH):
        index.do_polysemous_training = False  # for 8-bit Hamming filters: unused, and slow
        # Encode as the fast-scan index the backend builds itself would (same residual rule).
        fast_scan = faiss.index_factory(dim, _factory(dim, options) + "fs", _ip(faiss))
        index.by_residual = fast_scan.by_residual
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return faiss.serialize_index(index).tobytes()


def _ip(faiss: Any) -> Any:
    return faiss.METRIC_INNER_PRODUCT


def _cached(uri: str, load: Any) -> Any:
    if uri not in _CACHE:
        _CACHE[uri] = load(storage.read_bytes(uri))
    return _CACHE[uri]


def shard_part(payload: str) -> str:
    """Runs in a task: one shard's codes and exact tuning top-k, for every space; returns
    the URI of the part written beside the trained indexes."""
    job = json.loads(payload)
    faiss = _faiss()
    table = shards.read_shard(job["embeddings"], job["entry"])
    ids = table.column("id").to_numpy()
    offset = int(job["offset"])
    arrays: dict[str, Any] = {}  # np.savez's keywords (typed loosely by numpy)
    for space in job["spaces"]:
        vectors = shards.column_vectors(table, space)
        trained = _cached(storage.join(job["scratch"], f"{space}.faiss"), bytes)
        index = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
        index.add_with_ids(vectors, np.arange(offset, offset + len(vectors), dtype=np.int64))
        arrays[f"index_{space}"] = faiss.serialize_index(index)
        queries = _cached(storage.join(job["scratch"], f"{space}.queries.npy"), _npy)
        scores, positions = scan_topk(queries, Float32Store(vectors.shape[1], vectors), K + 1)
        arrays[f"scores_{space}"] = scores
        arrays[f"ids_{space}"] = np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)
    target = storage.join(job["scratch"], f"part-{job['entry']['unit']:06d}.npz")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    storage.write_atomic(target, lambda stream: stream.write(buffer.getvalue()))
    return target


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def merge_parts(
    space: str, trained: bytes, parts: list[str], n_queries: int
) -> tuple[Any, np.ndarray]:
    """The merged index (inverted lists of every part, in shard order) and the exact
    top-(K+1) ids of the tuning queries."""
    faiss = _faiss()
    merged = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
    best = (np.full((n_queries, K + 1), -np.inf, np.float32), np.full((n_queries, K + 1), -1))
    for uri in parts:
        with np.load(io.BytesIO(storage.read_bytes(uri)), allow_pickle=False) as part:
            merged.merge_from(faiss.deserialize_index(part[f"index_{space}"]), 0)
            best = merge_topk([best, (part[f"scores_{space}"], part[f"ids_{space}"])], K + 1)
    return merged, best[1]


def write_index(
    folder: Path,
    options: IndexOptions,
    ids: np.ndarray,
    store: Float32Store | Int8Store,
    merged: Any,
) -> None:
    """Write the merged index in the ``picsearch.ann`` folder format (``ann.load`` reads it)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(ids)
    np.save(folder / "ids.npy", ids.astype(np.int64))
    np.save(folder / "alive.npy", np.ones(n, dtype=bool))
    store.save(folder)
    faiss = _faiss()
    if isinstance(options.quantization, AH):
        # The layout the faiss backend searches: 4-bit codes packed for SIMD lookups.
        # (Merging fast-scan lists directly corrupts memory in faiss 1.15.)
        merged = faiss.IndexIVFPQFastScan(merged)
    faiss.write_index(merged, str(folder / "faiss.index"))
    manifest = {
        "format": "picsearch-ann",
        "version": FORMAT_VERSION,
        "backend": "faiss",
        "dim": store.dim,
        "options": options.to_dict(),
        "state": {"engine_n": n, "built_n": n, "changes": 0, "build_seconds": 0.0, "recall": None},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def update_manifest(folder: Path, options: IndexOptions, state: dict[str, Any]) -> None:
    """Record the tuned options, the measured recall and the build time."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["options"] = options.to_dict()
    manifest["state"].update(state)
    path.write_text(json.dumps(manifest, indent=2))
