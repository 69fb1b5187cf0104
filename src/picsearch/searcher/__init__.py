"""The one-file searcher: a library's query encoders, index and items in one file that
a light runtime (ONNX Runtime and numpy, no torch) opens and queries.

``reader`` holds ``TextSearcher`` and ``ImageSearcher``; ``results`` what they answer;
``bundle`` the file format (a checked zip), ``manifest`` and ``rules`` its typed
manifest, ``items`` the items and their filters, ``preprocess`` the query image's
pixels. ``export`` writes a library to a searcher file (``export_searcher``) and
``check`` asks the new file and its library the same questions.
"""

from __future__ import annotations

from .bundle import SearcherFileError
from .export import ExportReport, export_searcher
from .preprocess import preprocess
from .reader import ImageInput, ImageSearcher, TextSearcher
from .results import NearestNeighbor, SearcherOptions, SearchResult

__all__ = [
    "SearcherOptions",
    "NearestNeighbor",
    "SearchResult",
    "TextSearcher",
    "ImageSearcher",
    "ImageInput",
    "SearcherFileError",
    "preprocess",
    "ExportReport",
    "export_searcher",
]
