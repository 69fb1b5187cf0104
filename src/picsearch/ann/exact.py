"""Exact search: float32 brute force with numpy. The reference every other
backend is tested against, and the right choice for small collections."""

from __future__ import annotations

from typing import Any

from .base import AnnIndex

__all__ = ["ExactIndex"]


class ExactIndex(AnnIndex):
    """Scores every live vector. No engine: everything lives in the float32 store,
    so add/remove are immediate and a rebuild only compacts tombstones."""

    backend = "exact"

    def _engine_info(self) -> dict[str, Any]:
        return {"engine": "numpy float32 brute force"}
