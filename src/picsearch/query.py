"""One search, as one object: what to look for, how many, and the filters.

``Library.search`` takes a ``SearchQuery``; the CLI, the server and exported
searchers build the same object. The date filters' reading of a moment lives
here too, so that every reader of a date reads it alike.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from PIL import Image

from .concepts.fusion import TEXT_WEIGHT
from .errors import InvalidInput
from .images import DEFAULT_MAX_PIXELS

__all__ = ["SearchQuery", "ImageQuery", "Moment", "moment_ns"]

#: An example image: a path to a file or a PIL image.
ImageQuery = str | os.PathLike[str] | Image.Image
#: A point in time for the date filters: a Unix timestamp, a datetime, a date or an ISO string.
Moment = float | int | dt.datetime | dt.date | str


@dataclass(frozen=True, kw_only=True)
class SearchQuery:
    """What to find: words, an example image or a stored photo (``like``), and filters.

    See ``Library.search`` for what each field means.
    """

    text: str | None = None
    image: ImageQuery | None = None
    like: int | None = None
    k: int = 10
    folder: str | os.PathLike[str] | None = None
    after: Moment | None = None
    before: Moment | None = None
    people: bool | None = None
    has_text: bool | None = None
    bw: bool | None = None
    color: str | None = None
    text_only: bool = False
    text_weight: float = TEXT_WEIGHT
    max_pixels: int = DEFAULT_MAX_PIXELS


def moment_ns(moment: Moment | None, name: str) -> int | None:
    """A date filter bound as Unix nanoseconds; dates and naive datetimes are local time."""
    if moment is None:
        return None
    try:
        nanoseconds = _to_nanoseconds(moment, name)
    except InvalidInput:
        raise
    except (OverflowError, OSError, ValueError):  # e.g. year 1 in local time, or NaN
        nanoseconds = None
    # File times are stored as signed 64-bit nanoseconds: 1677-09-21 to 2262-04-11.
    if nanoseconds is None or not -(2**63) <= nanoseconds <= 2**63 - 1:
        raise InvalidInput(
            f"{name}={moment!r} is out of range: give a date between 1678 and 2262"
        ) from None
    return nanoseconds


def _to_nanoseconds(moment: Moment, name: str) -> int:
    if isinstance(moment, str):
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            raise InvalidInput(
                f"{name}={moment!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
            ) from None
    if isinstance(moment, dt.date) and not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    if isinstance(moment, dt.datetime):
        return int(moment.timestamp() * 1e9)
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        return int(moment * 1e9)
    raise InvalidInput(f"{name} must be a date, a datetime or a Unix timestamp, not {moment!r}")
