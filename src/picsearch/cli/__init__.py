"""The ``picsearch`` command: one module per subcommand, one parser, one output."""

from .entry import main

__all__ = ["main"]
