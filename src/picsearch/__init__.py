"""picsearch: find photos by words, by example, and their near-duplicates, offline."""

from __future__ import annotations

from . import ann
from .errors import (
    InvalidInput,
    LibraryError,
    MissingDependency,
    ModelMismatch,
    PicsearchError,
)
from .images import DEFAULT_MAX_PIXELS
from .ingest import IndexSummary, Skip
from .library import Hit, Item, Library, LibraryInfo, Results, open
from .query import SearchQuery
from .query_phrases import Understood, understand
from .searcher import (
    ImageSearcher,
    NearestNeighbor,
    SearcherFileError,
    SearcherOptions,
    SearchResult,
    TextSearcher,
)
from .version import __version__

__all__ = [
    "open",
    "ann",
    "Library",
    "Hit",
    "Item",
    "LibraryInfo",
    "SearchQuery",
    "Results",
    "understand",
    "Understood",
    "TextSearcher",
    "ImageSearcher",
    "SearcherOptions",
    "SearchResult",
    "NearestNeighbor",
    "SearcherFileError",
    "IndexSummary",
    "Skip",
    "DEFAULT_MAX_PIXELS",
    "PicsearchError",
    "InvalidInput",
    "LibraryError",
    "ModelMismatch",
    "MissingDependency",
    "__version__",
]
