"""Encoders, chosen by a model spec string.

``default``            the built-in offline model (MiniLM text + ImageNet CNN bridge)
``clip:/path/to/dir``  a CLIP or SigLIP model from a local Hugging Face folder
``dual:/path/to/dir``  a dual encoder trained by ``picsearch train`` (heads over the default)
``tiny``               a deterministic, dependency-free colour encoder for tests and examples
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput
from .base import Encoder, ImageEmbeddings, normalize

__all__ = ["Encoder", "ImageEmbeddings", "load_encoder", "register_encoder", "normalize"]

_Factory = Callable[[str], Encoder]
_FACTORIES: dict[str, _Factory] = {}
_CACHE: dict[str, Encoder] = {}


def register_encoder(family: str, factory: _Factory) -> None:
    """Make ``family`` or ``family:ARG`` specs build encoders with ``factory(ARG)``."""
    _FACTORIES[family] = factory


def _default(arg: str) -> Encoder:
    from .default import DefaultEncoder

    return DefaultEncoder()


def _clip(arg: str) -> Encoder:
    from .clip import ClipEncoder

    return ClipEncoder(arg)


def _dual(arg: str) -> Encoder:
    from .dual import DualEncoder

    return DualEncoder(arg)


def _tiny(arg: str) -> Encoder:
    from .tiny import TinyEncoder

    return TinyEncoder()


register_encoder("default", _default)
register_encoder("clip", _clip)
register_encoder("tiny", _tiny)
register_encoder("dual", _dual)


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
