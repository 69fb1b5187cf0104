"""How the ``picsearch`` command shows text that came from the file system.

Plain-text output is one line per result, so a file name holding a newline (or
any other control character) must not start a new line, and a name that is not
valid UTF-8 must print rather than fail. ``--json`` output keeps the exact path.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` on one printable line, like ``ls -b``: bytes that are not UTF-8 (kept
    as surrogate escapes by Python's file-system decoding) as ``\\xNN``, control
    characters as ``\\n``, ``\\t``, ``\\x1b`` and so on."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name gave
        raw = text.encode("utf-8", "backslashreplace")
    decoded = raw.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(_escape, decoded)


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")
