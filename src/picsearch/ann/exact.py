"""Exact search: float32 brute force with numpy. The reference every other
backend is tested against, and the right choice for small collections."""

from __future__ import annotations

from typing import Any

from .engine import Engine

__all__ = ["ExactEngine"]


class ExactEngine(Engine):
    """No engine: every live vector is scored from picsearch's store (float32,
    or int8 codes with ``quantization="int8"``), so add/remove are immediate
    and a rebuild only compacts tombstones."""

    name = "exact"

    def store_dtype(self) -> str:
        return "int8" if self.options.quantization == "int8" else "float32"

    def info(self) -> dict[str, Any]:
        return {"engine": f"numpy {self.store_dtype()} brute force"}
