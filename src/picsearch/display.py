"""How picsearch shows text that came from the file system.

A file name need not be valid UTF-8: Python keeps its stray bytes as surrogate
escapes, which JSON, HTML and terminals cannot carry. Every place that shows a
path (JSON results, the HTML report, the HTTP API, the command's lines) shows
those bytes as ``\\xNN``, like ``ls -b``, through :func:`path_text`. Plain-text
output is also one line per result, so :func:`printable` escapes control
characters as well: a name holding a newline must not start a new line.
"""

from __future__ import annotations

import os
import re

__all__ = ["path_text", "printable"]

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def path_text(path: str) -> str:
    """``path`` as text any output can carry: the bytes of a file name that are not
    UTF-8 shown as escapes (``caf\\xe9.png``); the exact path otherwise."""
    try:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decoded to
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


def printable(text: str) -> str:
    """``text`` on one printable line: :func:`path_text`, and control characters as
    ``\\n``, ``\\t``, ``\\x1b`` and so on."""
    return _CONTROL.sub(_escape, path_text(text))


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")
