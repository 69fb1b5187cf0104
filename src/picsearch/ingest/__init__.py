"""Indexing: walk folders (never taking "unreadable" for "deleted"), read and hash
ahead in threads, embed in batches, commit.

``pipeline`` runs an ``index`` (``index_paths``); ``walk`` finds the files and what is
gone; ``read`` reads, hashes and decodes ahead in threads; ``writer`` embeds and
commits; ``summary`` is what a run reports; ``metadata`` attaches an application's
fields to the photos.
"""

from __future__ import annotations

from .metadata import MetadataSource, attach_metadata
from .pipeline import index_paths
from .read import ordered_results
from .summary import IndexInterrupted, IndexSummary, Skip
from .walk import check_roots

__all__ = [
    "IndexInterrupted",
    "IndexSummary",
    "MetadataSource",
    "Skip",
    "attach_metadata",
    "check_roots",
    "index_paths",
    "ordered_results",
]
