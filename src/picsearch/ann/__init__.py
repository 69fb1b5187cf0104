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

from .base import AnnIndex
from .engine import Engine
from .factory import build, load
from .live import LiveIndex
from .options import AH, IndexOptions, Tree
from .options import parse_options as parse_options  # read as ann.parse_options, kept off __all__
from .registry import backend_class, backends, register_backend

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
