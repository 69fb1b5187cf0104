"""One search, as one object: what to look for, how many, and the filters.

``Library.search`` takes a ``SearchQuery``; the CLI, the server and exported
searchers build the same object. The date filters' reading of a moment lives
here too, so that every reader of a date reads it alike.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .concepts.filters import Filters
from .concepts.fusion import TEXT_WEIGHT
from .errors import InvalidInput
from .images import DEFAULT_MAX_PIXELS

__all__ = [
    "SearchQuery",
    "ImageQuery",
    "Moment",
    "moment_ns",
    "check_query",
    "check_id",
    "check_positive",
    "check_min_score",
    "has_photo_filters",
]

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
    place: str | None = None
    camera: str | None = None
    text_only: bool = False
    text_weight: float = TEXT_WEIGHT
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_score: float | None = None


def check_query(query: SearchQuery) -> Filters:
    """The query's concept filters, once the query is known to make sense."""
    check_positive(k=query.k)
    check_min_score(query.min_score)
    text, image, like = query.text, query.image, query.like
    if like is not None:
        check_id(like, "like")
    if text is not None and not text.strip():
        raise InvalidInput("the text query is empty: describe what to find")
    if image is not None and like is not None:
        raise InvalidInput("give an example image or a stored photo id (like=), not both")
    filters = Filters(people=query.people, has_text=query.has_text, bw=query.bw, color=query.color)
    if query.text_only and (text is None or image is not None or like is not None):
        raise InvalidInput("a text-only search looks for words: give words, and no image")
    _check_words(place=query.place, camera=query.camera)
    if text is None and image is None and like is None and not filters.any:
        if not has_photo_filters(query):
            raise InvalidInput(
                "nothing to search for: give a text query, an image, or a filter"
                " (place, camera, after, before)"
            )
    return filters


#: Scores are cosines plus at most the full-text bonus: a bound outside this keeps all or none.
MIN_SCORE_RANGE = (-1.0, 2.0)


def check_min_score(value: object) -> None:
    """``min_score``: None (flag weak matches, drop none) or a score to drop hits under."""
    if value is None:
        return
    low, high = MIN_SCORE_RANGE
    if (
        not isinstance(value, int | float | np.floating)
        or isinstance(value, bool)
        or not low <= value <= high  # also NaN
    ):
        raise InvalidInput(
            f"min_score must be a score from {low:g} to {high:g} (cosine similarity), not {value!r}"
        )


def has_photo_filters(query: SearchQuery) -> bool:
    """Whether the query filters on when, where or with what the photos were taken."""
    filters = (query.place, query.camera, query.after, query.before)
    return any(value is not None for value in filters)


def _check_words(**values: str | None) -> None:
    """Filters given as words (a place, a camera) must have some."""
    for name, value in values.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInput(f"{name} must be a name to look for, not {value!r}")


def check_positive(**values: int) -> None:
    """Counts given by the user (k, batch sizes...): whole numbers of at least 1."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a whole number of at least 1, not {value!r}")


#: Photo ids are SQLite integers: 64-bit, signed.
MAX_ID = 2**63 - 1


def check_id(value: object, name: str) -> None:
    """A photo id given by the user: a whole number SQLite can hold."""
    if (
        not isinstance(value, int | np.integer)
        or isinstance(value, bool)
        or not 0 <= value <= MAX_ID
    ):
        raise InvalidInput(
            f"{name}={value!r} is not a photo id: ids are whole numbers from 0 to {MAX_ID}"
            " (search --json shows them)"
        )


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
