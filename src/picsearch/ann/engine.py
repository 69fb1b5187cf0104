"""What an ANN engine (ScaNN, FAISS, or none for exact search) provides to AnnIndex.

An engine generates candidate positions and, when it keeps its own
re-ranking copy, re-ranks them itself in C++ and lends that copy back for
subsets and rebuilds (picsearch then keeps no second one). Everything else
(ids, tombstones, the side buffer, filters, padding, save/load) lives in
AnnIndex, the same for all engines. AnnIndex holds its engine as one
attribute, so a rebuild that lands on another engine swaps just that.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from .options import IndexOptions

__all__ = ["Engine", "LeanSearch", "VectorView"]

LeanSearch = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


class VectorView(Protocol):
    """Read-only rows an engine lends back (its re-ranking copy, decoded)."""

    dim: int

    def take(self, positions: np.ndarray | slice) -> np.ndarray: ...

    def __len__(self) -> int: ...


class Engine:
    """The no-engine engine: everything lives in picsearch's store (exact search).

    Subclasses override what their library can do; the defaults describe an
    engine that holds nothing."""

    name: ClassVar[str] = ""

    def __init__(self, dim: int, options: IndexOptions) -> None:
        self.dim = dim
        self.options = options

    # ---- sizing and capabilities -------------------------------------------
    def store_dtype(self) -> str:
        """Precision of picsearch's own copy of the rows this engine does not lend."""
        return self.options.reorder_dtype

    def min_train(self) -> int | None:
        """Vectors needed to train; None: there is nothing to train (exact search)."""
        return None

    def rerank_count(self) -> int:
        """Candidates picsearch re-scores from its copy (0: the engine's scores are final)."""
        return 0

    def filters_natively(self) -> bool:
        """Whether search() honours the mask itself (no over-fetch needed)."""
        return False

    def vectors(self) -> VectorView | None:
        """The engine's own re-ranking copy of its rows, if it keeps one."""
        return None

    # ---- building and updating ---------------------------------------------
    def train_add(self, vectors: np.ndarray) -> np.ndarray | None:
        """Train on ``vectors`` and hold them all. Returns the order the engine
        laid them out in (position i holds ``vectors[order[i]]``), None when
        it kept the given order."""
        raise NotImplementedError

    def add(self, vectors: np.ndarray, start: int) -> bool:
        """Add rows at positions start...; False: cannot, they stay in the buffer."""
        return False

    def remove(self, positions: np.ndarray) -> None:
        """Forget positions natively where the engine can; else tombstones do it."""

    def refresh(self) -> None:
        """Make vectors() cover rows added since training (engines whose copy
        is a snapshot taken at training time re-read it)."""

    # ---- searching -----------------------------------------------------------
    def search(
        self, queries: np.ndarray, fetch: int, mask: np.ndarray | None, frac: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates (scores, positions; -1 = none), best first per row."""
        raise NotImplementedError

    def lean_searcher(self) -> LeanSearch | None:
        """A pre-bound ``search(queries, k) -> (scores, positions)`` straight into
        the engine for unfiltered searches whose scores are final, or None when
        the engine has no such path. It trusts its input (a float32
        C-contiguous (nq, dim) array, 0 < k <= the rows held); short rows come
        back padded with a score that is not finite or at the float32 limit."""
        return None

    # ---- persistence and size ------------------------------------------------
    def save(self, folder: Path) -> None:
        pass

    def load(self, folder: Path) -> None:
        pass

    def nbytes(self, key: tuple[int, int]) -> int:
        """Bytes the engine holds (key changes whenever the contents may have)."""
        return 0

    def info(self) -> dict[str, Any]:
        return {}
