"""Exact search: float32 brute force with numpy. The reference every other
backend is tested against, and the right choice for small collections."""

from __future__ import annotations

from typing import Any

from .base import AnnIndex, Store
from .store import make_store

__all__ = ["ExactIndex"]


class ExactIndex(AnnIndex):
    """Scores every live vector. No engine: everything lives in the store (float32,
    or int8 codes with ``quantization="int8"``), so add/remove are immediate and a
    rebuild only compacts tombstones."""

    backend = "exact"

    def _make_store(self) -> Store:
        return make_store("int8" if self.options.quantization == "int8" else "float32", self.dim)

    def _engine_info(self) -> dict[str, Any]:
        return {"engine": f"numpy {self._store.dtype} brute force"}
