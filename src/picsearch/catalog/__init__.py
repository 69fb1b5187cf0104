"""The library file: one SQLite database with a row per photo (file identity, metadata,
vectors), the concept tables, and the meta values that bind it to a model.

``core`` holds ``Catalog``; ``schema`` its tables and the checks made on opening;
``rows`` turns rows into Python values and back; ``file`` opens the SQLite file
(read-only when it cannot be written) and turns SQLite's failures into one-line
errors; ``check`` finds damage, ``salvage`` copies what is readable of a damaged
file, and ``repair`` fixes the rest.
"""

from __future__ import annotations

from .core import Catalog
from .rows import Row, RowWithVectors, display_path
from .schema import SCHEMA_VERSION

__all__ = ["Catalog", "Row", "RowWithVectors", "SCHEMA_VERSION", "display_path"]
