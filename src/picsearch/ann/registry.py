"""The backend registry: engine names -> Engine classes, and named builders.

A leaf module (it imports no other part of the package) so that options,
the index and the public entry points can all consult it without import
cycles. Engines are named as "module:Class" and imported on first use, so a
missing engine only matters to the people who ask for it (txtai-style
factory).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInput

__all__ = [
    "backend_class",
    "backends",
    "builder_for",
    "register_backend",
    "register_builder",
]

# Backend name -> "module:Class" (or the class itself once registered so).
_BACKENDS: dict[str, Any] = {
    "exact": "picsearch.ann.exact:ExactEngine",
    "scann": "picsearch.ann.scann_backend:ScannEngine",
    "faiss": "picsearch.ann.faiss_backend:FaissEngine",
}
# Request name ("auto") -> the callable that builds and tunes an index for it;
# an index rebuilds itself with the builder of the request it was built from.
_BUILDERS: dict[str, Callable[..., Any]] = {}


def register_backend(name: str, target: str | type) -> None:
    """Make ``IndexOptions(backend=name)`` use the Engine subclass ``target``
    (a class or "module:Class")."""
    _BACKENDS[name] = target


def backends() -> list[str]:
    """Names build() accepts ("auto" included)."""
    return sorted([*_BACKENDS, "auto"])


def backend_class(name: str) -> Any:
    """The Engine class registered under ``name``."""
    target: Any = _BACKENDS.get(name)
    if target is None:
        raise InvalidInput(f"backend={name!r} must be one of {', '.join(backends())}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target


def register_builder(name: str, builder: Callable[..., Any]) -> None:
    """Build requests for ``name`` with ``builder(vectors, ids, options)``."""
    _BUILDERS[name] = builder


def builder_for(name: str) -> Callable[..., Any] | None:
    """The builder registered for the request ``name``, if any."""
    return _BUILDERS.get(name)
