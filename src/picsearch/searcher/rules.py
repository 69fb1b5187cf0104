"""Rules for the fields of a typed, range-checked JSON document (the searcher manifest).

Each dataclass field carries its rule (type, allowed values or range) in its
metadata (``rule(...)``), and a ``Checked`` dataclass checks every field when it
is built, from JSON or from Python: a wrong value is refused with the field
named (``ManifestFieldError``) before any of it is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

__all__ = [
    "MAX_CHARS",
    "ManifestFieldError",
    "Int",
    "Number",
    "Text",
    "Flag",
    "Several",
    "Names",
    "Section",
    "Table",
    "Rule",
    "rule",
    "Checked",
]

#: Longest text field, unless a rule says otherwise.
MAX_CHARS = 4096


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


# -- rules: each checks one JSON value and returns it in its Python form


@dataclass(frozen=True)
class Bounded:
    """A number from ``low`` to ``high``, of the kind ``accepts`` allows."""

    low: float
    high: float
    kind: ClassVar[str] = "a number"

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def bounds(self) -> str:
        return f"{self.low}..{self.high}"

    def parse(self, value: Any, name: str) -> Any:
        if not self.accepts(value):
            raise ManifestFieldError(name, f"must be {self.kind}, not {_shown(value)}")
        if not self.low <= value <= self.high:
            raise ManifestFieldError(name, f"is {_shown(value)}, outside {self.bounds()}")
        return value


@dataclass(frozen=True)
class Int(Bounded):
    kind: ClassVar[str] = "a whole number"

    def accepts(self, value: Any) -> bool:
        return _is_int(value)


@dataclass(frozen=True)
class Number(Bounded):
    kind: ClassVar[str] = "a finite number"

    def accepts(self, value: Any) -> bool:
        return _is_number(value)

    def bounds(self) -> str:
        return f"{self.low:g}..{self.high:g}"

    def parse(self, value: Any, name: str) -> float:
        return float(super().parse(value, name))


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
