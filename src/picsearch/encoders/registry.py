"""Which encoder family each model spec names, and the encoders built so far.

A leaf of the package: the families register themselves from ``encoders``'s
``__init__``, so an encoder built on another (``dual:`` over ``default``) loads
its base here without importing the package that imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput
from .base import Encoder

__all__ = ["Factory", "register_encoder", "load_encoder"]

#: Builds an encoder from the part of a spec after ``family:``.
Factory = Callable[[str], Encoder]
_FACTORIES: dict[str, Factory] = {}
_CACHE: dict[str, Encoder] = {}


def register_encoder(family: str, factory: Factory) -> None:
    """Make ``family`` or ``family:ARG`` specs build encoders with ``factory(ARG)``."""
    _FACTORIES[family] = factory


def load_encoder(spec: str = "default") -> Encoder:
    """Build (once per process) the encoder a model spec names."""
    if spec in _CACHE:
        return _CACHE[spec]
    family, _, arg = spec.partition(":")
    if family not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES))
        raise InvalidInput(f"unknown model '{spec}': use one of {known} (e.g. --model default)")
    encoder = _FACTORIES[family](arg)
    _CACHE[spec] = encoder
    return encoder
