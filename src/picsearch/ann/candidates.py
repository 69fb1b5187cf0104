"""The setups ``auto`` builds and compares: engine shapes, their options, the
cost model that predicts a setting's work, and the settings themselves."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import AnnIndex
from .options import AH, IndexOptions, Tree, default_num_leaves, leaf_tree

__all__ = [
    "COST",
    "REORDERS",
    "Setting",
    "Shape",
    "common_options",
    "counted_work",
    "dims_per_block",
    "predicted_cost",
    "principal_dims",
    "reorders_for",
    "reorders_of",
    "shapes",
]

REORDERS = (20, 30, 40, 60, 80, 120, 160, 240, 320)
LEAF_FACTORS = (2, 1)  # num_leaves = factor x sqrt(N); more leaves often need less work
# FAISS leaves and codes on the principal directions holding this share of the
# squared norms, when they are at most half the dimensions (Fashion-MNIST
# pixels: 256 of 784 hold 98 %; recall per setting as on all 784, measured)
ENERGY = 0.98
PROJECTION_SAMPLE = 20_000

# Cost model, microseconds per query, a batched query plus a single one
# (fitted on this project's 2-core machines with benchmarks/ann.py's tuning
# tables, see docs/ann.md): a fixed part per call, scoring the leaf centroids
# (per leaf x dim), scanning 4-bit codes (per vector x code) or SQ8 codes (per
# vector x dim), and the native re-rank (per candidate x dim). FAISS's 4-bit
# codes add a fixed part of their own (lookup tables per leaf, blocks of 32,
# the refine stage): at one leaf of 1 096 on the clustered set, 4-bit codes
# re-ranking 20 measured 54.9 us against 37.5 us for SQ8 codes.
COST = {
    "scann": {"call": 4.0, "centroid": 0.00025, "code": 0.00012, "rerank": 0.0006},
    "faiss": {
        "call": 6.0,
        "centroid": 0.00025,
        "code": 0.00010,
        "code_call": 20.0,
        "sq8": 0.0004,
        "rerank": 0.0009,
    },
}


def predicted_cost(index: AnnIndex, leaves_to_search: int, reorder: int) -> float:
    """Counted work of one query in microseconds (the cost model above)."""
    return counted_work(index.options, len(index), index.dim, leaves_to_search, reorder)


def counted_work(
    options: IndexOptions, n: int, dim: int, leaves_to_search: int, reorder: int
) -> float:
    """The cost model for an index of n vectors built with ``options``."""
    c = COST.get(str(options.backend), COST["faiss"])
    leaves = leaf_tree(options).num_leaves if options.tree else 1
    scanned = leaves_to_search * max(n, 1) / leaves
    fixed = c["call"]
    if options.quantization == "int8":  # SQ8 codes scored directly, no re-rank
        scan, reorder = c.get("sq8", c["code"]) * dim, 0
    else:
        scan = c["code"] * dim / dims_per_block(options)
        fixed += c.get("code_call", 0.0)
    return fixed + c["centroid"] * leaves * dim + scan * scanned + c["rerank"] * reorder * dim


def reorders_of(index: AnnIndex) -> tuple[int, ...]:
    """The re-rank depths a shape is tuned over: none for SQ8 codes, scored directly."""
    return reorders_for(index.options)


def reorders_for(options: IndexOptions) -> tuple[int, ...]:
    return (0,) if options.quantization == "int8" else REORDERS


def dims_per_block(options: IndexOptions) -> int:
    q = options.quantization
    return q.dims_per_block if isinstance(q, AH) else 1


def common_options(options: IndexOptions) -> dict[str, Any]:
    return {
        "distance": options.distance,
        "recall_target": options.recall_target,
        "rebuild_threshold": options.rebuild_threshold,
        "seed": options.seed,
        "tune_by": options.tune_by,
    }


@dataclass(frozen=True)
class Shape:
    """One engine layout auto may build: engine, leaves = factor x sqrt(N),
    its codes (4-bit codes of ``dims_per_block`` dimensions with an int8
    re-rank, or, FAISS, SQ8 codes scored directly: ``sq8``), and (FAISS, 4-bit
    codes) the principal directions the leaves and codes work on, if not every
    dimension."""

    engine: str
    factor: int
    dims_per_block: int
    projection: int | None = None
    sq8: bool = False

    def leaves(self, n: int) -> int:
        return min(default_num_leaves(n) * self.factor, max(1, n // 8))

    def key(self, n: int) -> str:
        if self.sq8:
            return f"{self.engine}/{self.leaves(n)}/SQ8"
        key = f"{self.engine}/{self.leaves(n)}/AH{self.dims_per_block}"
        return key if self.projection is None else f"{key}/P{self.projection}"

    def options(self, requested: IndexOptions, n: int) -> IndexOptions:
        leaves = self.leaves(n)
        return IndexOptions(
            backend=self.engine,
            tree=Tree(leaves, max(1, math.ceil(leaves * 0.05))),
            quantization="int8" if self.sq8 else AH(self.dims_per_block, 0.2),
            reorder=0 if self.sq8 else REORDERS[-1],
            reorder_dtype="int8",
            projection=self.projection,
            **{**common_options(requested), "distance": "dot"},  # vectors are normalised already
        )


def shapes(engines: list[str], dim: int, projection: int | None = None) -> list[Shape]:
    """Every shape auto considers for these engines, with sqrt(N) and 2 sqrt(N)
    leaves: ScaNN's anisotropic codes of 2 dimensions; FAISS codes of 1
    dimension, on ``projection`` principal directions when the vectors have
    so few (the same first-stage order for fewer codes and a cheaper centroid
    scan). One dimension per 4-bit code orders the first stage finely enough
    that a quarter of the candidates reach the recall (clustered 300k x 128,
    one leaf: 20 re-ranked where 2-dimension codes need 60-80), which pays
    most for a single query; the codes, dim/2 bytes, keep an index with its
    int8 re-ranking copy within 0.4 of float32.

    FAISS SQ8 codes (one byte per dimension of the residual to the leaf,
    scored directly, no re-rank) are built when the codes work on every
    dimension: on tight clusters one leaf reaches the recall and scanning its
    SQ8 codes is less work than 4-bit codes plus a re-rank (clustered 300k x
    128: recall 0.967 from one leaf of 1 096), sharing the 4-bit shapes' leaves
    (trained_leaves). With a projection, the 4-bit codes scan a third of the
    dimensions that SQ8 codes would (Fashion-MNIST: 256 of 784), so SQ8 is
    not built."""
    out = []
    for engine in engines:
        if engine == "faiss" and projection is None:  # SQ8 first: its budget prunes more
            out += [Shape(engine, f, 1, sq8=sq8) for f in LEAF_FACTORS for sq8 in (True, False)]
        elif engine == "faiss":
            out += [Shape(engine, f, 1, projection) for f in LEAF_FACTORS]
        else:
            out += [Shape(engine, f, 2) for f in LEAF_FACTORS]
    return out


def principal_dims(vectors: np.ndarray, seed: int) -> int | None:
    """How many principal directions hold ENERGY of the vectors' squared norm
    (rounded up to a multiple of 8), when that is at most half the dimensions;
    None otherwise (a projection would save too little)."""
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    sample = vectors[np.sort(rng.choice(n, size=min(n, PROJECTION_SAMPLE), replace=False))]
    energy = np.linalg.eigvalsh((sample.T @ sample).astype(np.float64))[::-1]
    held = np.cumsum(energy) / max(float(energy.sum()), 1e-30)
    dims = int(np.searchsorted(held, ENERGY)) + 1
    dims = min(dim, -(-dims // 8) * 8)
    return dims if dims <= dim // 2 else None


@dataclass
class Setting:
    """One built index at one (leaves_to_search, reorder) meeting the target."""

    index: AnnIndex
    leaves_to_search: int
    reorder: int
    recall: float
    cost: float
    bound: float | None = None
    us_batch: float | None = None
    us_single: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def us(self) -> float:
        """What tune_by="time" minimises: a batched query plus a single one."""
        return (self.us_batch or 0.0) + (self.us_single or 0.0)

    def order(self) -> tuple[Any, ...]:
        """The fixed tie-break: least cost, then engine, leaves, code, depth."""
        options = self.index.options
        return (
            self.cost,
            self.index.backend,
            leaf_tree(options).num_leaves,
            options.quantization == "int8",
            -dims_per_block(options),
            self.leaves_to_search,
            self.reorder,
        )

    def apply(self) -> None:
        tree = leaf_tree(self.index.options)
        self.index.options = self.index.options.replace(
            tree=Tree(tree.num_leaves, self.leaves_to_search), reorder=self.reorder
        )

    def record(self) -> dict[str, Any]:
        return {
            "engine": self.index.backend,
            "num_leaves": leaf_tree(self.index.options).num_leaves,
            "codes": "SQ8" if self.index.options.quantization == "int8" else "AH",
            "dims_per_block": dims_per_block(self.index.options),
            "projection": self.index.options.projection,
            "leaves_to_search": self.leaves_to_search,
            "reorder": self.reorder,
            "recall@10": round(self.recall, 4),
            "recall_bound": None if self.bound is None else round(self.bound, 4),
            "cost_us": round(self.cost, 2),
            "batch_us": None if self.us_batch is None else round(self.us_batch, 2),
            "single_us": None if self.us_single is None else round(self.us_single, 2),
            **self.extra,
        }
