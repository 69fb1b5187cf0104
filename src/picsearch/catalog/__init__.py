"""The library file: one SQLite database with a row per photo (file identity, metadata,
vectors), the concept tables, and the meta values that bind it to a model.

``core`` holds ``Catalog``; ``file`` opens the SQLite file (read-only when it cannot be
written) and turns SQLite's failures into one-line errors; ``check`` finds damage and
``repair`` rebuilds what is intact.
"""

from __future__ import annotations

from .core import SCHEMA_VERSION, Catalog, Row, display_path

__all__ = ["Catalog", "Row", "SCHEMA_VERSION", "display_path"]
