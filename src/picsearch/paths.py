"""Where picsearch keeps its files, each overridable by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_db_path", "cache_dir", "DB_ENV", "CACHE_ENV"]

DB_ENV = "PICSEARCH_DB"
CACHE_ENV = "PICSEARCH_CACHE"


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback)


def default_db_path() -> Path:
    """The library used when no --db is given: $PICSEARCH_DB, else the user data dir."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]).expanduser()
    return _xdg("XDG_DATA_HOME", ".local/share") / "picsearch" / "library.db"


def cache_dir() -> Path:
    """Exported ONNX encoders and other derived files: $PICSEARCH_CACHE, else the user cache."""
    if os.environ.get(CACHE_ENV):
        path = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        path = _xdg("XDG_CACHE_HOME", ".cache") / "picsearch"
    path.mkdir(parents=True, exist_ok=True)
    return path
