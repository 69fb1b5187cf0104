"""A photo library: catalog + encoder + vector indexes, the object behind picsearch.open().

``core`` holds ``Library`` (indexing, reads, info) and ``open``; ``search`` turns a
``SearchQuery`` into hits; ``spaces`` keeps each vector space's index; ``hits``
has what a library gives back.
"""

from __future__ import annotations

from .core import Library, Results, open
from .hits import Hit, Item, LibraryInfo, row_metadata

__all__ = ["Library", "Hit", "Item", "LibraryInfo", "Results", "open", "row_metadata"]
