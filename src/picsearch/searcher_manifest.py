"""The manifest of a searcher file as typed, range-checked dataclasses.

Each field carries its rule (type, allowed values or range) in the dataclass
field's metadata, and every dataclass checks its fields when it is built, from
JSON or from Python. So a crafted manifest (a resize to a million pixels, a
crop of zero, an unknown resampling filter, dimensions of a billion) is
refused with the field named before any of it is used. Fields this reader
does not know are ignored, so later additions to the format still open.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "QUANTIZE",
    "RESAMPLE",
    "MAX_SIDE",
    "MAX_DIM",
    "ManifestFieldError",
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
MAX_CHARS = 4096
SPACES = ("joint", "visual")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A member name: safe characters, no absolute path, no "." or ".." component.
_MEMBER = re.compile(r"(?!\.\.?(/|$))(?!.*/\.\.?(/|$))[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class ManifestFieldError(Exception):
    """One manifest field is missing, of the wrong type or out of range."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"field {name} {problem}")
        self.name = name
        self.problem = problem

    def within(self, prefix: str) -> ManifestFieldError:
        return ManifestFieldError(f"{prefix}.{self.name}", self.problem)


def _shown(value: Any) -> str:
    """A value for a one-line message: JSON-ish, and short whatever its size."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


# -- rules: each checks one JSON value and returns it in its Python form --------------


@dataclass(frozen=True)
class Int:
    low: int
    high: int

    def parse(self, value: Any, name: str) -> int:
        if not _is_int(value):
            raise ManifestFieldError(name, f"must be a whole number, not {_shown(value)}")
        if not self.low <= value <= self.high:
            raise ManifestFieldError(name, f"is {_shown(value)}, outside {self.low}..{self.high}")
        return value


@dataclass(frozen=True)
class Number:
    low: float
    high: float

    def parse(self, value: Any, name: str) -> float:
        if not _is_number(value):
            raise ManifestFieldError(name, f"must be a finite number, not {_shown(value)}")
        if not self.low <= value <= self.high:
            raise ManifestFieldError(
                name, f"is {_shown(value)}, outside {self.low:g}..{self.high:g}"
            )
        return float(value)


@dataclass(frozen=True)
class Text:
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    pattern: re.Pattern[str] | None = None
    max_chars: int = MAX_CHARS

    def parse(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise ManifestFieldError(name, f"must be text, not {_shown(value)}")
        choices = self.choices() if callable(self.choices) else self.choices
        if choices is not None and value not in choices:
            allowed = ", ".join(choices)
            raise ManifestFieldError(name, f"must be one of {allowed}, not {_shown(value)}")
        if len(value) > self.max_chars or (self.pattern and not self.pattern.fullmatch(value)):
            raise ManifestFieldError(name, f"is not a valid value: {_shown(value)}")
        return value


@dataclass(frozen=True)
class Flag:
    def parse(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise ManifestFieldError(name, f"must be true or false, not {_shown(value)}")
        return value


@dataclass(frozen=True)
class Several:
    """A fixed-length list of values that each follow ``item``."""

    item: Int | Number
    count: int

    def parse(self, value: Any, name: str) -> tuple:
        if not isinstance(value, list | tuple) or len(value) != self.count:
            raise ManifestFieldError(name, f"must be a list of {self.count}, not {_shown(value)}")
        return tuple(self.item.parse(v, f"{name}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class Names:
    """A non-empty list of distinct names from ``choices``."""

    choices: tuple[str, ...]

    def parse(self, value: Any, name: str) -> tuple[str, ...]:
        if (
            not isinstance(value, list | tuple)
            or not value
            or len(set(map(str, value))) != len(value)
        ):
            raise ManifestFieldError(
                name, f"must be a list of distinct names from {', '.join(self.choices)}"
            )
        return tuple(Text(self.choices).parse(v, f"{name}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class Section:
    """A nested object, checked by its own dataclass."""

    kind: type[Checked]

    def parse(self, value: Any, name: str) -> Checked:
        if isinstance(value, self.kind):
            return value
        if not isinstance(value, Mapping):
            raise ManifestFieldError(name, f"must be an object, not {_shown(value)}")
        try:
            return self.kind.from_json(value)
        except ManifestFieldError as exc:
            raise exc.within(name) from None


@dataclass(frozen=True)
class Table:
    """An object whose keys follow ``key`` and whose values follow ``value``."""

    key: Text
    value: Section
    max_entries: int

    def parse(self, value: Any, name: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ManifestFieldError(name, f"must be an object, not {_shown(value)}")
        for key in value:
            self.key.parse(key, f"{name} key")
        if len(value) > self.max_entries:
            raise ManifestFieldError(name, f"has more than {self.max_entries} entries")
        return {key: self.value.parse(entry, f"{name}.{key}") for key, entry in value.items()}


Rule = Int | Number | Text | Flag | Several | Names | Section | Table


def rule(check: Rule, *, nullable: bool = False) -> dict[str, Any]:
    """Field metadata: how the field's value is checked."""
    return {"rule": check, "nullable": nullable}


class Checked:
    """A dataclass whose constructor checks every field against its rule."""

    #: Fields that must appear in the JSON (the others have defaults).
    required: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for spec in fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            if "rule" not in spec.metadata or (value is None and spec.metadata["nullable"]):
                continue
            object.__setattr__(self, spec.name, spec.metadata["rule"].parse(value, spec.name))
        self.check()

    def check(self) -> None:
        """Rules across fields (each class adds its own)."""

    @classmethod
    def from_json(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ManifestFieldError("(top)", f"must be an object, not {_shown(data)}")
        names = [spec.name for spec in fields(cls) if "rule" in spec.metadata]  # type: ignore[arg-type]
        for name in cls.required:
            if name not in data:
                raise ManifestFieldError(name, "is missing")
        return cls(**{name: data[name] for name in names if name in data})


# -- the manifest's sections ---------------------------------------------------------------

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
        return self.crop or self.resize  # type: ignore[return-value]

    @property
    def short_side(self) -> int:
        """The short side a query image is decoded to before preprocessing."""
        return self.resize_short or min(self.resize or self.crop)  # type: ignore[type-var]


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


def _index_backends() -> tuple[str, ...]:
    from . import ann

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
        for space in self.encoders.image.outputs:
            if space not in self.spaces:
                raise ManifestFieldError("encoders.image.outputs", f"names {space}, not in spaces")
        for name, space in self.spaces.items():
            self._check_space(name, space)

    def _check_space(self, name: str, space: Space) -> None:
        if self.model.dims.of(name) is None:
            raise ManifestFieldError(f"model.dims.{name}", "is missing for its index")
        if space.folder != f"index/{name}":
            raise ManifestFieldError(f"spaces.{name}.folder", f"must be index/{name}")
        if not any(part.startswith(space.folder + "/") for part in self.parts):
            raise ManifestFieldError(f"spaces.{name}.folder", "holds no parts")
