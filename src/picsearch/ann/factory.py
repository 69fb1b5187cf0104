"""The public entry points: build an index (an engine or ``auto``) and load one.

Above both the index and ``auto``: it wires auto's builder into the registry,
so an index built by auto (or loaded from one) rebuilds itself the same way
without the index module knowing about auto.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .auto import build_auto
from .base import AnnIndex
from .options import IndexOptions, parse_options
from .registry import register_builder

__all__ = ["build", "load"]

register_builder("auto", build_auto)


def build(
    vectors: Any,
    ids: Any = None,
    options: str | IndexOptions | dict[str, Any] | None = "auto",
) -> AnnIndex:
    """Index ``vectors`` (n, dim) under int64 ``ids`` (default 0..n-1)."""
    opts = parse_options(options)
    if opts.backend == "auto":
        return build_auto(vectors, ids, opts)
    return AnnIndex.build(vectors, ids, opts)


def load(folder: str | Path) -> AnnIndex:
    """Open an index written by ``index.save(folder)``."""
    return AnnIndex.load(folder)
