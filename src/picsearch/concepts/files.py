"""Model files that ship inside installed packages, found without importing those packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import MissingDependency, require

__all__ = ["package_file", "opencv"]

EXTRA = "concepts"


def package_file(package: str, relative: str, *, pip_name: str, purpose: str) -> Path:
    """``relative`` inside the installed ``package`` (located, not imported)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # ValueError: a module without a spec
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise MissingDependency(pip_name, EXTRA, purpose)


def opencv(purpose: str):
    """The cv2 module, set to one thread: the indexing pipeline runs photos in parallel."""
    cv2 = require("cv2", package="opencv-python-headless", extra=EXTRA, purpose=purpose)
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise MissingDependency("opencv-python-headless<5", EXTRA, purpose)
    cv2.setNumThreads(1)
    return cv2
