"""FAISS engine: IVF with fast-scan PQ and a native re-rank, or HNSW.

``kind="ivf"``: k-means leaves (``IVF{num_leaves}``) and 4-bit PQ codes of each
vector's residual to its leaf centroid, scored with SIMD lookup tables
(``PQ{dim/dims_per_block}x4fs``), optionally on a projection onto the top
``projection`` principal directions (``IndexPreTransform``), wrapped in
FAISS's ``IndexRefine``: the best ``reorder`` candidates are re-scored in C++
from FAISS's own copy of every dimension (SQ8, one byte per dimension, with
``reorder_dtype="int8"``; float32 otherwise). Rows are laid out grouped by
leaf, so a query's candidates sit together in that copy. picsearch reads the
copy back for subsets and rebuilds and keeps no second one.

``quantization="int8"`` (``IVF…,SQ8``): one byte per dimension of each
vector's residual to its leaf centroid, scored directly while the leaves are
scanned. Those codes are the only copy (no first-stage codes, no re-rank: a
re-rank from another int8 copy would score the same): on tight clusters one
leaf then reaches the recall at a fraction of the work of codes + re-rank
(clustered 300k x 128, 1 096 leaves, one searched: recall@10 0.967).
picsearch reads them back (a direct map) for subsets and rebuilds. With
``reorder_dtype="float32"``, or ``quantization="none"`` (``IVF…,Flat``),
picsearch keeps its copy and re-ranks from it. Subsets and removed vectors
are filtered inside the search by an ``IDSelectorBitmap``.

``kind="hnsw"``: ``HNSW{m}`` over float32 vectors; scores are exact already,
so the graph's own vectors serve subsets and rebuilds. HNSW cannot delete,
so removal is a tombstone (filtered by the selector).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, require
from .engine import Engine, LeanSearch
from .options import AH, Tree, default_num_leaves, leaf_tree
from .trained_leaves import leaves_key, recall_leaves, remember_leaves

__all__ = ["FaissEngine", "FaissRows"]

TRAIN_SAMPLE = 100_000  # vectors k-means and PQ train on, at least
TRAIN_PER_LEAF = 160  # and at least this many per leaf
PROJECTION_SAMPLE = 20_000  # vectors the principal directions are found on


class FaissRows:
    """Rows read back from a FAISS index that can reconstruct them (SQ8, flat, HNSW)."""

    def __init__(self, index: Any, dim: int) -> None:
        self._index = index
        self.dim = dim

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        if isinstance(positions, slice):
            start, stop, _ = positions.indices(self._index.ntotal)
            return self._index.reconstruct_n(start, max(stop - start, 0))
        flat = np.ascontiguousarray(positions, dtype=np.int64).reshape(-1)
        return self._index.reconstruct_batch(flat).reshape(*np.shape(positions), self.dim)

    def __len__(self) -> int:
        return int(self._index.ntotal)


class FaissEngine(Engine):
    name = "faiss"

    def __init__(self, dim: int, options: Any) -> None:
        self._faiss = require("faiss", package="faiss-cpu", extra="ann", purpose="backend='faiss'")
        super().__init__(dim, options)
        self._index: Any = None
        self._refine = False  # the index is an IndexRefine (native re-rank)
        self._sq8 = False  # the index is IVF-SQ8 whose codes are the only copy
        self._parts: tuple[Any, ...] = ()
        self._nbytes_key: tuple[int, int] | None = None
        self._nbytes = 0
        if self._hnsw:  # no training: the graph exists from the start
            self._index = self._new_hnsw()

    @property
    def _hnsw(self) -> bool:
        return self.options.kind == "hnsw"

    def store_dtype(self) -> str:
        return "float32" if self._hnsw else self.options.reorder_dtype

    def min_train(self) -> int | None:
        if self._hnsw:
            return 1
        tree = self.options.tree
        return max(1000, 4 * tree.num_leaves) if tree else 1000

    def _reorder_depth(self) -> int:
        default = 0 if self.options.quantization == "none" else 100
        return default if self.options.reorder is None else self.options.reorder

    def _wants_refine(self) -> bool:
        return isinstance(self.options.quantization or AH(), AH) and self._reorder_depth() > 0

    def _scores_final(self) -> bool:
        """Whether the engine's own scores need no re-rank by picsearch."""
        return self._hnsw or self._refine or self._sq8

    def _wants_sq8(self) -> bool:
        return self.options.quantization == "int8" and self.options.reorder_dtype == "int8"

    def rerank_count(self) -> int:
        return 0 if self._scores_final() else self._reorder_depth()

    def filters_natively(self) -> bool:
        return True

    def vectors(self) -> FaissRows | None:
        if self._refine:
            return FaissRows(self._index.refine_index, self.dim)
        if (self._hnsw or self._sq8) and self._index is not None:  # the index is its copy
            return FaissRows(self._index, self.dim)
        return None

    # ---- engine -----------------------------------------------------------
    def _new_hnsw(self) -> Any:
        index = self._faiss.IndexHNSWFlat(
            self.dim, self.options.hnsw_m, self._faiss.METRIC_INNER_PRODUCT
        )
        index.hnsw.efConstruction = self.options.ef_construction
        return index

    def _code_dim(self) -> int:
        """Dimensions the leaves and codes work in (the projection's, if any)."""
        projection = self.options.projection
        if projection is None:
            return self.dim
        if projection > self.dim:
            raise InvalidInput(f"projection={projection} must be at most dim={self.dim}")
        return projection

    def _factory_string(self) -> str:
        q = self.options.quantization or AH()
        if isinstance(q, AH):
            dim = self._code_dim()
            if dim % q.dims_per_block:
                raise InvalidInput(
                    f"dims_per_block={q.dims_per_block} must divide dim={dim} "
                    "for backend='faiss' (try 1, 2 or 4)"
                )
            body = f"PQ{dim // q.dims_per_block}x4fs"
        else:
            body = {"int8": "SQ8", "none": "Flat"}[q]
        tree = self.options.tree
        return f"IVF{tree.num_leaves},{body}" if tree else body

    def _new_refine(self) -> Any:
        faiss = self._faiss
        if self.options.reorder_dtype == "int8":
            return faiss.IndexScalarQuantizer(
                self.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        return faiss.IndexFlatIP(self.dim)

    def train_add(self, vectors: np.ndarray) -> np.ndarray | None:
        if self._hnsw:
            self._index.add(vectors)
            return None
        if self.options.tree is None:
            # "sized from the data": about sqrt(N) leaves, search 5% of them
            leaves = default_num_leaves(len(vectors))
            self.options = self.options.replace(tree=Tree(leaves, max(1, math.ceil(leaves / 20))))
        faiss = self._faiss
        sample = self._training_sample(vectors)
        ivf = faiss.index_factory(
            self._code_dim(), self._factory_string(), faiss.METRIC_INNER_PRODUCT
        )
        if isinstance(self.options.quantization or AH(), AH) or self._wants_sq8():
            # Codes of the residual to the leaf centroid: a finer first-stage order
            # for the same bytes (the factory leaves it off for inner products).
            ivf.by_residual = True
        index, parts = ivf, [ivf]
        projection = None
        if self.options.projection is not None:
            projection = self._principal_directions(sample)
            index = faiss.IndexPreTransform(projection, ivf)
            parts += [projection, index]
        if self._wants_refine():
            refine = self._new_refine()
            index = faiss.IndexRefine(index, refine)
            parts.append(refine)
            self._refine = True
        elif self._wants_sq8():
            ivf.make_direct_map(True)  # positions -> codes, for subsets and rebuilds
            self._sq8 = True
        self._parts = tuple(parts)  # Python owns every part: keep them alive with the index
        self._train(index, ivf, sample)
        self._index = index
        leaf = self._leaf_of(ivf, vectors if projection is None else projection.apply(vectors))
        order = np.argsort(leaf, kind="stable")
        if self._sq8:  # the leaves are known: FAISS need not find them again
            rows, homes = vectors[order], leaf[order]  # positions 0.. in this order
            pointer = self._faiss.swig_ptr
            ivf.add_core(len(rows), pointer(rows), None, pointer(homes))
        else:
            self.add(vectors[order], 0)
        return order

    def _train(self, index: Any, ivf: Any, sample: np.ndarray) -> None:
        """Train, reusing the leaves another shape already found on this sample
        (FAISS skips k-means when its quantizer holds every centroid)."""
        key = self._leaves_key(sample)  # a digest of the whole sample: once
        centroids = recall_leaves(key)
        if centroids is not None:
            ivf.quantizer.add(centroids)
        index.train(sample)
        if centroids is None:
            remember_leaves(key, ivf.quantizer.reconstruct_n(0, ivf.nlist))

    def _leaves_key(self, sample: np.ndarray) -> Any:
        tree = leaf_tree(self.options)
        return leaves_key(sample, tree.num_leaves, self._code_dim(), self.options.seed)

    def leaves(self, vectors: np.ndarray) -> np.ndarray:
        """The leaf centroids a build on ``vectors`` would train (trained now if no
        index was trained on that sample yet, and kept for the build), so a
        caller can judge the leaves before any codes are made. All dimensions only."""
        if self._hnsw or self.options.projection is not None:
            raise InvalidInput("leaves() applies to kind='ivf' without a projection")
        sample = self._training_sample(vectors)
        key = self._leaves_key(sample)
        centroids = recall_leaves(key)
        if centroids is None:
            nlist = leaf_tree(self.options).num_leaves
            ivf = self._faiss.index_factory(
                self.dim, f"IVF{nlist},Flat", self._faiss.METRIC_INNER_PRODUCT
            )
            ivf.train(sample)  # k-means alone: what every IVF index's training starts with
            centroids = ivf.quantizer.reconstruct_n(0, nlist)
            remember_leaves(key, centroids)
        return centroids

    def _principal_directions(self, sample: np.ndarray) -> Any:
        """A projection onto the sample's top principal directions, uncentred so
        that dot products keep (x -> A x, A with orthonormal rows)."""
        if len(sample) > PROJECTION_SAMPLE:  # directions settle long before that
            rng = np.random.default_rng(self.options.seed)
            sample = sample[np.sort(rng.choice(len(sample), PROJECTION_SAMPLE, replace=False))]
        moments = (sample.T @ sample).astype(np.float64)
        _, directions = np.linalg.eigh(moments)  # ascending eigenvalues
        top = np.ascontiguousarray(directions[:, ::-1][:, : self._code_dim()].T, np.float32)
        transform = self._faiss.LinearTransform(self.dim, len(top), False)
        self._faiss.copy_array_to_vector(top.ravel(), transform.A)
        transform.is_orthonormal = True
        transform.is_trained = True
        return transform

    def _leaf_of(self, ivf: Any, vectors: np.ndarray) -> np.ndarray:
        """Each vector's leaf. Positions are then grouped by leaf: a query's
        candidates sit side by side in the re-ranking copy (measured 7-15 %
        faster re-ranks than scattered rows, which miss the cache one by one)."""
        _, leaf = ivf.quantizer.search(vectors, 1)
        return np.ascontiguousarray(leaf[:, 0])

    def _training_sample(self, vectors: np.ndarray) -> np.ndarray:
        """A seeded sample, as ScaNN trains: k-means cost is linear in it. Fewer
        than ~160 points per leaf cost recall on tight clusters (clustered
        300k x 128, 1096 leaves, 1 leaf / 80 re-ranked: 0.949 from 91 points a
        leaf, 0.964 from 164, 0.965 from 256, the most FAISS's k-means uses)."""
        size = max(TRAIN_SAMPLE, TRAIN_PER_LEAF * leaf_tree(self.options).num_leaves)
        if len(vectors) <= size:
            return vectors
        rng = np.random.default_rng(self.options.seed)
        return vectors[np.sort(rng.choice(len(vectors), size, replace=False))]

    def add(self, vectors: np.ndarray, start: int) -> bool:
        if self._index is None:
            return False
        if self._scores_final():
            self._index.add(vectors)  # sequential ids are the positions
        else:  # ids = positions, so native removal can find them
            self._index.add_with_ids(vectors, np.arange(start, start + len(vectors)))
        return True

    def remove(self, positions: np.ndarray) -> None:
        # Fast-scan lists are not touched: in faiss 1.15, remove_ids on an
        # IVF...x4fs index corrupts the vectors added afterwards (half of them
        # stop being found), and a refined index must keep positions in step
        # with its copy. Tombstones + the selector filter them instead.
        if self._index is not None and not self._scores_final():
            if not isinstance(self.options.quantization or AH(), AH):
                self._index.remove_ids(self._faiss.IDSelectorBatch(positions.astype(np.int64)))

    def _search_params(self, fetch: int, frac: float, selector: Any) -> Any:
        faiss = self._faiss
        kwargs = {} if selector is None else {"sel": selector}
        if self._hnsw:
            ef = self.options.ef_search or 64
            return faiss.SearchParametersHNSW(efSearch=max(ef, fetch), **kwargs)
        tree = leaf_tree(self.options)
        # a filter leaves fewer hits per leaf: probe a few more leaves
        probes = math.ceil(tree.num_leaves_to_search * min(1.0 / max(frac, 1e-9), 4.0))
        ivf = faiss.SearchParametersIVF(nprobe=min(probes, tree.num_leaves), **kwargs)
        if self.options.projection is not None:  # the IVF sits behind the projection
            ivf = faiss.SearchParametersPreTransform(index_params=ivf)
        if not self._refine:
            return ivf
        depth = self._reorder_depth()
        if frac < 1.0:  # tombstones and filters thin the candidates: look deeper
            depth = math.ceil(depth / max(frac, 0.02))
        return faiss.IndexRefineSearchParameters(
            k_factor=max(1.0, depth / fetch), base_index_params=ivf
        )

    def search(
        self, queries: np.ndarray, fetch: int, mask: np.ndarray | None, frac: float
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        bits = selector = None
        if mask is not None:  # subset and/or tombstones
            bits = np.packbits(mask, bitorder="little")  # must outlive the search call
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        params = self._search_params(fetch, frac, selector)
        scores, pos = self._index.search(queries, fetch, params=params)
        del bits
        return scores, pos

    def lean_searcher(self) -> LeanSearch | None:
        if self._index is None:
            return None
        index_search = self._index.search_c
        pointer = self._faiss.swig_ptr
        params_for: dict[int, Any] = {}  # per k: built once, not per call
        make_params = self._search_params

        def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            params = params_for.get(k)
            if params is None:
                params_for[k] = params = make_params(k, 1.0, None)
            n = len(queries)
            scores = np.empty((n, k), np.float32)
            positions = np.empty((n, k), np.int64)
            index_search(n, pointer(queries), k, pointer(scores), pointer(positions), params)
            return scores, positions  # short rows: id -1, score -FLT_MAX

        return search

    # ---- persistence and size -------------------------------------------------
    def save(self, folder: Path) -> None:
        if self._index is not None:
            self._faiss.write_index(self._index, str(folder / "faiss.index"))

    def load(self, folder: Path) -> None:
        self._index = self._faiss.read_index(str(folder / "faiss.index"))
        # indexes written before the native re-rank (and by the Spark build) have
        # no refine stage: picsearch re-ranks those from its own copy
        self._refine = hasattr(self._index, "refine_index")
        self._sq8 = isinstance(self._index, self._faiss.IndexIVFScalarQuantizer) and (
            self._index.direct_map.type == self._faiss.DirectMap.Array
        )

    def nbytes(self, key: tuple[int, int]) -> int:
        if self._index is None:
            return 0
        if key != self._nbytes_key:  # serialising is the honest size; cache it
            self._nbytes = int(self._faiss.serialize_index(self._index).nbytes)
            self._nbytes_key = key
        return self._nbytes

    def info(self) -> dict[str, Any]:
        if self._hnsw:
            desc = f"HNSW{self.options.hnsw_m},Flat"
        elif self._index is None:
            desc = "untrained"
        else:
            desc = self._factory_string()
            if self.options.projection is not None:
                desc = f"projection to {self.options.projection} dims, {desc}"
            if self._refine:
                desc += " + refine " + ("SQ8" if self.options.reorder_dtype == "int8" else "Flat")
            if self._sq8:
                desc += " (residual codes scored directly)"
        copy = 0
        if self._refine or self._sq8:
            codes = self._index.refine_index if self._refine else self._index
            copy = int(codes.sa_code_size()) * int(codes.ntotal)
        return {
            "engine": f"faiss {self._faiss.__version__} {desc}",
            "rerank": self.rerank_count(),
            "rerank_dtype": self.options.reorder_dtype,
            "native_rerank": self._reorder_depth() if self._refine else 0,
            "native_codes": self._sq8,
            "native_copy_bytes": copy,
        }
