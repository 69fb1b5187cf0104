"""Encoders, chosen by a model spec string.

``default``            the built-in offline model (MiniLM text + ImageNet CNN bridge)
``clip:/path/to/dir``  a CLIP or SigLIP model from a local folder, in Hugging Face's
                       layout or Immich's (``visual/`` and ``textual/`` ONNX)
``clip:ORG/NAME``      the same from the local Hugging Face cache (never downloaded)
``dual:/path/to/dir``  a dual encoder trained by ``picsearch train`` (heads over the default)
``tiny``               a deterministic, dependency-free colour encoder for tests and examples

Each family's module is imported on first use of its spec. Optional abilities
(``PreparesImages``, ``ExportsQueryModel``...) are Protocols checked with
``isinstance``.
"""

from __future__ import annotations

from .base import (
    Encoder,
    ExportsQueryModel,
    ImageEmbeddings,
    OnnxGraphBase,
    PreparesImages,
    ProjectsBase,
    normalize,
)
from .registry import load_encoder, register_encoder

__all__ = [
    "Encoder",
    "ImageEmbeddings",
    "load_encoder",
    "register_encoder",
    "normalize",
    "PreparesImages",
    "ExportsQueryModel",
    "OnnxGraphBase",
    "ProjectsBase",
]


def _default(arg: str) -> Encoder:
    from .default import DefaultEncoder

    return DefaultEncoder()


def _clip(arg: str) -> Encoder:
    from .model_layouts import load_clip_family

    return load_clip_family(arg)


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
