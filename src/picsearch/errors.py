"""The exceptions picsearch raises. The CLI turns them into one-line messages."""

from __future__ import annotations

__all__ = [
    "PicsearchError",
    "InvalidInput",
    "LibraryError",
    "ModelMismatch",
    "MissingDependency",
]


class PicsearchError(Exception):
    """Base class: every error picsearch raises on purpose."""


class InvalidInput(PicsearchError, ValueError):
    """A query, file or option the user gave cannot be used."""


class LibraryError(PicsearchError):
    """A library file is missing, damaged or of a newer schema."""


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
