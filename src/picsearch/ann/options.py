"""Index options in the user's language, validated once, up front.

Every rule names the option and its valid range, so a bad value fails with a
message the CLI can show as is (``num_leaves_to_search=500 must be between 1
and num_leaves=100``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidInput, LibraryError
from .registry import backends

__all__ = ["AH", "Tree", "IndexOptions", "BACKENDS", "leaf_tree", "parse_options"]

BACKENDS = ("exact", "scann", "faiss", "auto")  # built in; register_backend adds more
DISTANCES = ("dot", "cosine")
KINDS = ("ivf", "hnsw")
REORDER_DTYPES = ("float32", "int8")
TUNE_BY = ("time", "cost")


def _backends() -> tuple[str, ...]:
    """The names IndexOptions(backend=...) accepts: the registry, so that
    ``ann.register_backend`` names are selectable too."""
    return tuple(backends())


def _int_in(name: str, value: Any, low: int, high: int, high_name: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name}={value!r} must be an integer")
    if not low <= value <= high:
        upper = f"{high_name}={high}" if high_name else str(high)
        raise InvalidInput(f"{name}={value} must be between {low} and {upper}")


@dataclass(frozen=True)
class Tree:
    """Partition the vectors into ``num_leaves`` leaves (k-means); a query scores
    the vectors of its ``num_leaves_to_search`` nearest leaves only."""

    num_leaves: int
    num_leaves_to_search: int

    def __post_init__(self) -> None:
        _int_in("num_leaves", self.num_leaves, 1, 1 << 22)
        _int_in(
            "num_leaves_to_search",
            self.num_leaves_to_search,
            1,
            self.num_leaves,
            high_name="num_leaves",
        )


@dataclass(frozen=True)
class AH:
    """Anisotropic product quantization (ScaNN's "asymmetric hashing"): each block
    of ``dims_per_block`` dimensions becomes one 4-bit code. The anisotropic
    threshold weights the error parallel to the vector (what matters for dot
    products); None turns that off. FAISS has no anisotropic loss and ignores it."""

    dims_per_block: int = 2
    anisotropic_threshold: float | None = 0.2

    def __post_init__(self) -> None:
        _int_in("dims_per_block", self.dims_per_block, 1, 64)
        t = self.anisotropic_threshold
        if t is not None and (not isinstance(t, int | float) or not 0.0 <= t < 1.0):
            raise InvalidInput(f"anisotropic_threshold={t!r} must be between 0 and 1, or None")


Quantization = Literal["none", "int8"] | AH


@dataclass(frozen=True, kw_only=True)
class IndexOptions:
    """How to index. None means "the backend's default, sized from the data".

    backend        "auto" (pick by size and measured recall), "exact", "scann", "faiss"
    distance       "dot" (vectors already L2-normalised) or "cosine" (normalised for you)
    tree           Tree(num_leaves, num_leaves_to_search), None = ~sqrt(N) leaves
    quantization   "none" | "int8" | AH(dims_per_block, anisotropic_threshold)
    reorder        how many candidates are re-scored exactly (0 = off)
    reorder_dtype  precision of the re-scoring copy: "int8" (1/4 of float32) or "float32"
    kind           FAISS only: "ivf" (tree + quantization) or "hnsw" (graph, float32)
    projection     FAISS IVF only: leaves and codes on this many principal directions
    tune_by        auto only: "cost" (least counted work: deterministic for a seed)
                   or "time" (fastest measured on this machine)
    """

    backend: str = "auto"
    distance: str = "dot"
    tree: Tree | None = None
    quantization: Quantization | None = None
    reorder: int | None = None
    reorder_dtype: str = "int8"
    kind: str = "ivf"
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int | None = None
    # FAISS IVF with AH codes only: leaves and codes on the vectors' projection onto
    # their top `projection` principal directions (uncentred, so dot products
    # keep); the re-ranking copy keeps every dimension
    projection: int | None = None
    # auto only: the recall@10 to reach, and the size below which exact search wins
    recall_target: float = 0.95
    exact_below: int | None = None
    # auto only: among the settings reaching the target, keep the least counted
    # work ("cost": deterministic for a seed, no clock involved) or the fastest as
    # timed on this machine ("time", ties broken by the cost model)
    tune_by: str = "cost"
    # live updates: rebuild once this fraction of the collection changed since the build
    rebuild_threshold: float = 0.2
    seed: int = 0
    # filled in by `auto` after measuring; kept so save/load and rebuild reuse them
    tuned: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._check_choices()
        self._check_numbers()
        self._check_consistency()

    def _check_choices(self) -> None:
        for name, valid in (
            ("backend", _backends()),
            ("distance", DISTANCES),
            ("kind", KINDS),
            ("reorder_dtype", REORDER_DTYPES),
            ("tune_by", TUNE_BY),
        ):
            value = getattr(self, name)
            if value not in valid:
                raise InvalidInput(f"{name}={value!r} must be one of {', '.join(valid)}")
        if self.tree is not None and not isinstance(self.tree, Tree):
            raise InvalidInput(f"tree={self.tree!r} must be Tree(num_leaves, num_leaves_to_search)")
        q = self.quantization
        if q is not None and not isinstance(q, AH) and q not in ("none", "int8"):
            raise InvalidInput(f"quantization={q!r} must be 'none', 'int8' or AH(...)")

    def _check_numbers(self) -> None:
        if self.reorder is not None:
            _int_in("reorder", self.reorder, 0, 100_000)
        _int_in("hnsw_m", self.hnsw_m, 4, 256)
        _int_in("ef_construction", self.ef_construction, 1, 100_000)
        if self.ef_search is not None:
            _int_in("ef_search", self.ef_search, 1, 100_000)
        if self.projection is not None:
            _int_in("projection", self.projection, 1, 1 << 16)
        if self.exact_below is not None:
            _int_in("exact_below", self.exact_below, 0, 1 << 40)
        _int_in("seed", self.seed, 0, (1 << 31) - 1)
        for name in ("recall_target", "rebuild_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < value <= 1.0:
                raise InvalidInput(f"{name}={value!r} must be between 0 (excluded) and 1")

    def _check_consistency(self) -> None:
        b = self.backend
        if b == "exact":
            for name in ("tree", "reorder"):
                if getattr(self, name) is not None:
                    raise InvalidInput(f"{name} does not apply to backend='exact' (it scans all)")
            if self.quantization not in (None, "none", "int8"):
                raise InvalidInput("quantization must be 'none' or 'int8' with backend='exact'")
        if self.kind == "hnsw":
            if b != "faiss":
                raise InvalidInput(f"kind='hnsw' applies to backend='faiss' only, not {b!r}")
            if self.tree is not None:
                raise InvalidInput("tree does not apply to kind='hnsw' (a graph, not leaves)")
            if self.quantization not in (None, "none"):
                raise InvalidInput("quantization must be 'none' with kind='hnsw' (HNSW32 flat)")
        elif self.ef_search is not None:
            raise InvalidInput("ef_search applies to kind='hnsw' only")
        if self.projection is not None and (
            b != "faiss" or self.kind != "ivf" or not isinstance(self.quantization or AH(), AH)
        ):
            raise InvalidInput(
                "projection applies to backend='faiss' with kind='ivf' and AH codes only"
            )

    # -- helpers -------------------------------------------------------------
    def replace(self, **changes: Any) -> IndexOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the manifest stores it; from_dict reads it back)."""
        out = dataclasses.asdict(self)
        q = self.quantization
        out["quantization"] = {"AH": dataclasses.asdict(q)} if isinstance(q, AH) else q
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexOptions:
        data = dict(data)
        if data.get("tree") is not None:
            data["tree"] = Tree(**data["tree"])
        q = data.get("quantization")
        if isinstance(q, dict):
            data["quantization"] = AH(**q["AH"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"unknown index option(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def parse_options(options: str | IndexOptions | dict[str, Any] | None) -> IndexOptions:
    """Accept "auto", a backend name, a dict of options, or IndexOptions."""
    if options is None:
        return IndexOptions()
    if isinstance(options, IndexOptions):
        return options
    if isinstance(options, str):
        if options not in _backends():
            raise InvalidInput(f"backend={options!r} must be one of {', '.join(_backends())}")
        return IndexOptions(backend=options)
    if isinstance(options, dict):
        return IndexOptions.from_dict(options)
    raise InvalidInput(f"options={options!r} must be a backend name or IndexOptions(...)")


def default_num_leaves(n: int) -> int:
    """ScaNN's and FAISS's rule of thumb: about sqrt(N) leaves."""
    return max(1, int(round(math.sqrt(max(n, 1)))))


def leaf_tree(options: IndexOptions) -> Tree:
    """The options' tree: a tree engine sizes one from the data when it trains,
    so every trained ScaNN or FAISS IVF index has one."""
    if options.tree is None:
        raise LibraryError(f"backend={options.backend!r} has no tree yet: build the index first")
    return options.tree
