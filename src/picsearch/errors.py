"""The exceptions picsearch raises. The CLI turns them into one-line messages."""

from __future__ import annotations

import os
import shlex

__all__ = [
    "PicsearchError",
    "InvalidInput",
    "LibraryError",
    "DamagedLibrary",
    "ReadOnlyLibrary",
    "ModelMismatch",
    "MissingDependency",
]


class PicsearchError(Exception):
    """Base class: every error picsearch raises on purpose."""


class InvalidInput(PicsearchError, ValueError):
    """A query, file or option the user gave cannot be used."""


class LibraryError(PicsearchError):
    """A library file is missing, damaged or of a newer schema."""


class DamagedLibrary(LibraryError):
    """A library file is damaged; ``picsearch check --db FILE --repair`` may fix it.

    ``reason`` says what was found (SQLite's message, or the broken invariant).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, lead: str = "") -> None:
        command = repair_command(path)
        lead = lead or f"{path} is damaged"
        super().__init__(f"{lead} ({reason}): run '{command}'")
        self.path = os.fspath(path)
        self.reason = reason


class ReadOnlyLibrary(LibraryError):
    """A write to a library that can only be read (the file or its folder)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(
            f"cannot write to {path}: read-only (make the file and its folder writable, "
            "or work on a copy)"
        )
        self.path = os.fspath(path)


def repair_command(path: str | os.PathLike[str]) -> str:
    """The command that checks and repairs the library at ``path``."""
    return f"picsearch check --db {shlex.quote(os.fspath(path))} --repair"


class ModelMismatch(LibraryError):
    """The library was built with another model than the one asked for."""


class MissingDependency(PicsearchError, ImportError):
    """An optional package is needed; the message holds the pip command."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'picsearch[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, *, package: str, extra: str, purpose: str):
    """Import an optional module, or raise MissingDependency with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(package, extra, purpose) from exc
