"""The last step of a shard-parallel index: merge, measure, tune, and hand it to the library."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import ann
from ..ann import Tree
from ..ann.auto import K, tune
from ..ann.search import leave_one_out
from ..catalog import Catalog
from . import index_parts

__all__ = ["finish_space"]


def finish_space(
    catalog: Catalog,
    folder: Path,
    space: str,
    options: ann.IndexOptions,
    requested: ann.IndexOptions,
    filled: Any,
    parts: dict[str, Any],
) -> dict[str, Any]:
    """Write the merged index where the library looks for it; returns what was built."""
    merged, truth = parts["merged"][space]
    name = f"{space}-{filled.generation}"
    target = folder / name
    if target.exists():
        shutil.rmtree(target)
    index_parts.write_index(target, options, filled.ids, filled.stores[space], merged)
    index = ann.load(target)
    extra = np.setdiff1d(catalog.ids(), filled.ids)
    if len(extra):  # photos indexed into this library by other means: add them live
        found, vectors = catalog.space_vectors(space, index.dim, ids=extra)
        index.add(vectors, found)
    queries, self_ids = filled.queries[space], filled.query_ids
    started = time.perf_counter()
    if requested.backend == "auto":
        options, recall = _tuned(index, options, requested, queries, truth, self_ids, parts)
    else:
        _, got = index.search(queries, K + 1)
        recall = leave_one_out(truth, got, self_ids, K)
    seconds = parts["train_seconds"][space] + parts["add_seconds"]
    state = {
        "recall": {"k": K, "recall": round(recall, 4), "queries": len(queries)},
        "build_seconds": round(seconds, 3),
    }
    if len(extra):
        index.options = options
        index.save(target)
    index_parts.update_manifest(target, options, state)
    _point(folder, space, name, filled.generation)
    return {
        "backend": "faiss",
        "size": len(index),
        "how": f"{parts['shards']} shards added in parallel ({parts['engine']})",
        "leaves": index_parts.tree_of(options).num_leaves,
        "leaves_to_search": index_parts.tree_of(options).num_leaves_to_search,
        "reorder": options.reorder,
        "recall@10": recall,
        "train_seconds": round(parts["train_seconds"][space], 3),
        "add_seconds": round(parts["add_seconds"], 3),
        "merge_seconds": round(parts["merge_seconds"], 3),
        "tune_seconds": round(time.perf_counter() - started, 3),
        "bytes_per_vector": round(index.nbytes / max(len(index), 1), 2),
    }


def _tuned(
    index: ann.AnnIndex,
    options: ann.IndexOptions,
    requested: ann.IndexOptions,
    queries: np.ndarray,
    truth: np.ndarray,
    self_ids: np.ndarray,
    parts: dict[str, Any],
) -> tuple[ann.IndexOptions, float]:
    """The fastest (leaves to search, re-rank depth) meeting the recall target, as ``auto``
    tunes a library's index, on queries whose exact answers the shard tasks computed."""
    target = requested.recall_target
    (searched, reorder, recall, ms), table = tune(index, queries, truth, self_ids, target)
    leaves = index_parts.tree_of(options).num_leaves
    tuned = {
        "requested": requested.replace(tuned={}).to_dict(),
        "chose": "faiss",
        "reason": (
            f"n={len(index)}: shard-parallel build, FAISS IVF fast-scan trained on a sample, "
            f"{parts['shards']} shards added in parallel ({parts['engine']})"
        ),
        "leaves_to_search": searched,
        "reorder": reorder,
        "recall@10": recall,
        "ms_per_query": ms,
        "target_met": recall >= target,
        "tuning": table,
    }
    return options.replace(tree=Tree(leaves, searched), reorder=reorder, tuned=tuned), recall


def _point(folder: Path, space: str, name: str, generation: int) -> None:
    """Switch the library to the new index atomically, then drop the old ones."""
    pointer = folder / f"{space}.json"
    temporary = pointer.with_suffix(".tmp")
    temporary.write_text(json.dumps({"folder": name, "generation": generation}))
    os.replace(temporary, pointer)
    for path in folder.glob(f"{space}-*"):
        if path.is_dir() and path.name != name:
            shutil.rmtree(path, ignore_errors=True)
