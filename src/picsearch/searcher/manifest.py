"""The manifest of a searcher file as typed, range-checked dataclasses.

Each field carries its rule (type, allowed values or range, see ``rules``) in
the dataclass field's metadata, and every dataclass checks its fields when it is
built, from JSON or from Python. So a crafted manifest (a resize to a million pixels, a
crop of zero, an unknown resampling filter, dimensions of a billion) is
refused with the field named before any of it is used. Fields this reader
does not know are ignored, so later additions to the format still open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .rules import (
    Checked,
    Flag,
    Int,
    ManifestFieldError,
    Names,
    Number,
    Section,
    Several,
    Table,
    Text,
    rule,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "QUANTIZE",
    "RESAMPLE",
    "MAX_SIDE",
    "MAX_DIM",
    "Part",
    "Preprocess",
    "TextEncoder",
    "ImageEncoder",
    "Encoders",
    "Dims",
    "Model",
    "Space",
    "Manifest",
]

FORMAT = "picsearch-searcher"
FORMAT_VERSION = 1
#: none: float everything; vectors: int8 stored vectors; int8: int8 vectors and text encoder.
QUANTIZE = ("none", "vectors", "int8")
RESAMPLE = ("bilinear", "bicubic")
#: Largest side of a preprocessed query image. Released image encoders take 224 to 896
#: pixels; 2048 leaves room and still bounds a query at 2048² × 3 float32 (50 MB).
MAX_SIDE = 2048
#: Largest vector dimension (released encoders: 8 to 4096).
MAX_DIM = 16_384
MAX_ITEMS = 2**40
MAX_PART_BYTES = 2**50
#: Largest magnitude of a pixel scale or shift (honest ones are below 300).
MAX_PIXEL_FACTOR = 1e6
SPACES = ("joint", "visual")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A member name: safe characters, no absolute path, no "." or ".." component.
_MEMBER = re.compile(r"(?!\.\.?(/|$))(?!.*/\.\.?(/|$))[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


_SIDE = Int(1, MAX_SIDE)
_FACTOR = Number(-MAX_PIXEL_FACTOR, MAX_PIXEL_FACTOR)
_MEMBER_NAME = Text(pattern=_MEMBER, max_chars=255)


@dataclass(frozen=True)
class Part(Checked):
    """One member of the file: its SHA-256 and size."""

    required = ("sha256", "bytes")
    sha256: str = field(default="", metadata=rule(Text(pattern=_SHA256)))
    bytes: int = field(default=0, metadata=rule(Int(0, MAX_PART_BYTES)))


@dataclass(frozen=True)
class Preprocess(Checked):
    """How a query image becomes the image graph's pixels (see docs/searcher.md)."""

    required = ("scale", "shift")
    scale: tuple[float, float, float] = field(
        default=(1.0,) * 3, metadata=rule(Several(_FACTOR, 3))
    )
    shift: tuple[float, float, float] = field(
        default=(0.0,) * 3, metadata=rule(Several(_FACTOR, 3))
    )
    resample: str = field(default="bilinear", metadata=rule(Text(RESAMPLE)))
    resize: tuple[int, int] | None = field(
        default=None, metadata=rule(Several(_SIDE, 2), nullable=True)
    )
    resize_short: int | None = field(default=None, metadata=rule(_SIDE, nullable=True))
    crop: tuple[int, int] | None = field(
        default=None, metadata=rule(Several(_SIDE, 2), nullable=True)
    )
    pad_to_crop: bool = field(default=False, metadata=rule(Flag()))
    rounding: str = field(default="round", metadata=rule(Text(("round", "floor"))))

    def check(self) -> None:
        if self.resize is not None and self.resize_short is not None:
            raise ManifestFieldError("resize", "and resize_short cannot both be given")
        if self.resize is None and self.crop is None:
            raise ManifestFieldError("crop", "is missing: without resize or crop, sizes vary")

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the pixels the graph receives."""
        return self.crop or self.resize or (0, 0)  # check() made sure one is given

    @property
    def short_side(self) -> int:
        """The short side a query image is decoded to before preprocessing."""
        return self.resize_short or min(self.resize or self.crop or (0,))


@dataclass(frozen=True)
class TextEncoder(Checked):
    required = ("onnx", "tokenizer")
    onnx: str = field(default="", metadata=rule(_MEMBER_NAME))
    tokenizer: str = field(default="", metadata=rule(_MEMBER_NAME))
    weights: str = field(default="float", metadata=rule(Text(("float", "int8"))))


@dataclass(frozen=True)
class ImageEncoder(Checked):
    required = ("onnx", "outputs", "preprocess")
    onnx: str = field(default="", metadata=rule(_MEMBER_NAME))
    outputs: tuple[str, ...] = field(default=("joint",), metadata=rule(Names(SPACES)))
    preprocess: Preprocess = field(default=None, metadata=rule(Section(Preprocess)))  # type: ignore[assignment]

    def check(self) -> None:
        if "joint" not in self.outputs:
            raise ManifestFieldError("outputs", "must include joint")

    @property
    def space(self) -> str:
        """The space image queries search: the image-only one where the model has it."""
        return "visual" if "visual" in self.outputs else "joint"


@dataclass(frozen=True)
class Encoders(Checked):
    required = ("text", "image")
    text: TextEncoder = field(default=None, metadata=rule(Section(TextEncoder)))  # type: ignore[assignment]
    image: ImageEncoder = field(default=None, metadata=rule(Section(ImageEncoder)))  # type: ignore[assignment]


@dataclass(frozen=True)
class Dims(Checked):
    required = ("joint",)
    joint: int = field(default=0, metadata=rule(Int(1, MAX_DIM)))
    visual: int | None = field(default=None, metadata=rule(Int(1, MAX_DIM), nullable=True))

    def of(self, space: str) -> int | None:
        return self.joint if space == "joint" else self.visual


@dataclass(frozen=True)
class Model(Checked):
    required = ("spec", "id", "dims")
    spec: str = field(default="", metadata=rule(Text()))
    id: str = field(default="", metadata=rule(Text(max_chars=255)))
    dims: Dims = field(default=None, metadata=rule(Section(Dims)))  # type: ignore[assignment]
    #: The model's calibrated weak-match cutoff for text queries (None: it has none).
    weak_cutoff: float | None = field(default=None, metadata=rule(Number(-1, 2), nullable=True))


def _index_backends() -> tuple[str, ...]:
    from .. import ann

    return tuple(name for name in ann.backends() if name != "auto")


@dataclass(frozen=True)
class Space(Checked):
    """One vector space's index: where its files are and what it is."""

    required = ("folder", "backend", "size")
    folder: str = field(default="", metadata=rule(_MEMBER_NAME))
    backend: str = field(default="exact", metadata=rule(Text(_index_backends, max_chars=64)))
    size: int = field(default=0, metadata=rule(Int(0, MAX_ITEMS)))
    bytes_per_vector: float = field(default=0.0, metadata=rule(Number(0, 1e9)))


@dataclass(frozen=True)
class Manifest(Checked):
    """The whole manifest. ``raw`` keeps the JSON as read, unknown fields included."""

    required = (
        "format",
        "format_version",
        "model",
        "distance",
        "quantize",
        "encoders",
        "spaces",
        "items",
        "parts",
    )
    format: str = field(default=FORMAT, metadata=rule(Text((FORMAT,))))
    format_version: int = field(default=FORMAT_VERSION, metadata=rule(Int(1, FORMAT_VERSION)))
    model: Model = field(default=None, metadata=rule(Section(Model)))  # type: ignore[assignment]
    distance: str = field(default="dot", metadata=rule(Text(("dot",))))
    quantize: str = field(default="none", metadata=rule(Text(QUANTIZE)))
    encoders: Encoders = field(default=None, metadata=rule(Section(Encoders)))  # type: ignore[assignment]
    spaces: dict[str, Space] = field(
        default_factory=dict, metadata=rule(Table(Text(SPACES), Section(Space), len(SPACES)))
    )
    items: int = field(default=0, metadata=rule(Int(1, MAX_ITEMS)))
    parts: dict[str, Part] = field(
        default_factory=dict, metadata=rule(Table(_MEMBER_NAME, Section(Part), 100_000))
    )
    picsearch_version: str = field(default="", metadata=rule(Text(max_chars=64)))
    created: str = field(default="", metadata=rule(Text(max_chars=64)))
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        manifest = super().from_json(data)
        object.__setattr__(manifest, "raw", dict(data))  # as given, unknown fields included
        return manifest

    def check(self) -> None:
        for name in ("text", "image"):
            encoder = getattr(self.encoders, name)
            members = [encoder.onnx] + ([encoder.tokenizer] if name == "text" else [])
            for member in members:
                if f"encoders/{member}" not in self.parts:
                    raise ManifestFieldError(f"encoders.{name}", f"names {member}, not in parts")
        if "joint" not in self.spaces:
            raise ManifestFieldError("spaces", "has no joint index")
        for output in self.encoders.image.outputs:
            if output not in self.spaces:
                raise ManifestFieldError("encoders.image.outputs", f"names {output}, not in spaces")
        for name, space in self.spaces.items():
            self._check_space(name, space)

    def _check_space(self, name: str, space: Space) -> None:
        if self.model.dims.of(name) is None:
            raise ManifestFieldError(f"model.dims.{name}", "is missing for its index")
        if space.folder != f"index/{name}":
            raise ManifestFieldError(f"spaces.{name}.folder", f"must be index/{name}")
        if not any(part.startswith(space.folder + "/") for part in self.parts):
            raise ManifestFieldError(f"spaces.{name}.folder", "holds no parts")
