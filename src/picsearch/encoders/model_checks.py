"""Checks shared by the model folder readers: JSON files named in messages, the rule on
pickled weights, and what an ONNX graph's inputs and outputs look like.

Pickled weights (``.bin``, ``.pt``) can run code when loaded, so they are refused
unless the user allows them on purpose (``--allow-pickle``, which sets
``$PICSEARCH_ALLOW_PICKLE`` so that the server's and Spark's processes see it too).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

__all__ = [
    "ALLOW_PICKLE_ENV",
    "pickle_allowed",
    "refuse_pickle",
    "read_json",
    "GraphSide",
    "graph_sides",
    "sampled_digest",
]

#: Set to 1 to let pickled weights load (what ``--allow-pickle`` does).
ALLOW_PICKLE_ENV = "PICSEARCH_ALLOW_PICKLE"


def pickle_allowed() -> bool:
    """Whether the user allowed pickled weights for this process and its children."""
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def refuse_pickle(path: Path) -> InvalidInput:
    """The refusal of the pickled weights file at ``path``."""
    return InvalidInput(
        f"{path}: pickled weights are not loaded unless allowed (loading one can run code "
        "in it): convert the model to safetensors, or pass --allow-pickle if you trust it"
    )


def read_json(path: Path, expected: str) -> dict[str, Any]:
    """The JSON object in ``path``; a missing or unreadable file is refused by name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: missing; expected {expected}") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: unreadable ({exc}); expected {expected}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: not a JSON object; expected {expected}")
    return data


@dataclass(frozen=True)
class GraphSide:
    """One input or output of an ONNX graph: its name, shape (ints where fixed) and type."""

    name: str
    shape: tuple[int | str | None, ...]
    type: str

    def fixed(self, axis: int) -> int | None:
        """The size of ``axis`` when the graph fixes it, else None."""
        size = self.shape[axis] if -len(self.shape) <= axis < len(self.shape) else None
        return size if isinstance(size, int) and size > 0 else None


def graph_sides(session: Any) -> tuple[list[GraphSide], list[GraphSide]]:
    """An ONNX Runtime session's inputs and outputs."""

    def sides(values: Any) -> list[GraphSide]:
        return [GraphSide(v.name, tuple(v.shape or ()), str(v.type)) for v in values]

    return sides(session.get_inputs()), sides(session.get_outputs())


def sampled_digest(paths: list[Path], *, digest_size: int = 6) -> str:
    """A short digest of files: small ones whole, large ones by size, head and tail (fast
    on weights of gigabytes, and still tells two checkpoints of one architecture apart)."""
    digest = hashlib.blake2b(digest_size=digest_size)
    for path in paths:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as handle:
            if size <= 4 << 20:
                digest.update(handle.read())
            else:
                digest.update(handle.read(1 << 20))
                handle.seek(size - (1 << 20))
                digest.update(handle.read())
    return digest.hexdigest()
