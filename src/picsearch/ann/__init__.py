"""Approximate nearest-neighbour search behind one small interface.

    from picsearch import ann
    index = ann.build(vectors, ids, "auto")          # or IndexOptions(backend="scann", ...)
    scores, ids = index.search(queries, k=10)        # best first; -1 / -inf padding
    index.save("index/"); index = ann.load("index/")

Engines (one module each): ``exact`` (numpy), ``scann``, ``faiss`` (IVF fast-scan
PQ with SQ8 refine, or HNSW), and ``auto``, which picks one and tunes it by
measuring recall. Every index is an AnnIndex holding one engine object.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .base import AnnIndex
from .engine import Engine
from .live import LiveIndex
from .options import AH, IndexOptions, Tree, parse_options

__all__ = [
    "AH",
    "AnnIndex",
    "Engine",
    "IndexOptions",
    "LiveIndex",
    "Tree",
    "backend_class",
    "backends",
    "build",
    "load",
    "register_backend",
]

# Backend name -> "module:Class", imported on first use so that a missing
# engine only matters to the people who ask for it (txtai-style factory).
_BACKENDS: dict[str, str] = {
    "exact": "picsearch.ann.exact:ExactEngine",
    "scann": "picsearch.ann.scann_backend:ScannEngine",
    "faiss": "picsearch.ann.faiss_backend:FaissEngine",
}


def register_backend(name: str, target: str | type[Engine]) -> None:
    """Make ``IndexOptions(backend=name)`` use the Engine subclass ``target``
    (a class or "module:Class")."""
    _BACKENDS[name] = target  # type: ignore[assignment]


def backends() -> list[str]:
    """Names build() accepts ("auto" included)."""
    return sorted([*_BACKENDS, "auto"])


def backend_class(name: str) -> type[Engine]:
    """The Engine class registered under ``name``."""
    target: Any = _BACKENDS.get(name)
    if target is None:
        raise InvalidInput(f"backend={name!r} must be one of {', '.join(backends())}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target


def build(
    vectors: Any,
    ids: Any = None,
    options: str | IndexOptions | dict[str, Any] | None = "auto",
) -> AnnIndex:
    """Index ``vectors`` (n, dim) under int64 ``ids`` (default 0..n-1)."""
    opts = parse_options(options)
    if opts.backend == "auto":
        from .auto import build_auto

        return build_auto(vectors, ids, opts)
    return AnnIndex.build(vectors, ids, opts)


def load(folder: str | Path) -> AnnIndex:
    """Open an index written by ``index.save(folder)``."""
    return AnnIndex.load(folder)
