"""Queries that say when and where: "beach in Lisbon summer 2019" becomes the words
"beach" with the filters taken 2019-06-01..2019-08-31 and place Lisbon.

A small deterministic grammar rather than a general date parser: it knows years,
months with a year or after "in", seasons with a year or after "last"/"this",
and phrases relative to today. Ordinary words are never read as dates: "may",
"march", "fall" or "spring" alone stay words to search. Places are only the
library's own place names, so no word becomes a place the library does not have.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .photo_info import fold
from .query import SearchQuery

__all__ = ["Understood", "understand", "understand_query", "describe"]


@dataclass(frozen=True)
class Understood:
    """What a query says: the words left to search (None when none are left), the
    capture dates [after, before) and the place it names."""

    text: str | None
    after: dt.date | None = None
    before: dt.date | None = None
    place: str | None = None

    @property
    def any(self) -> bool:
        """Whether a date or a place was understood."""
        return self.after is not None or self.place is not None

    def to_dict(self) -> dict[str, Any]:
        """As JSON: ``text`` (the words searched, None when none are left), ``after`` and
        ``before`` (ISO dates, ``before`` excluded), ``place``, and ``summary``, the one
        line ``describe`` gives."""
        return {
            "text": self.text,
            "after": self.after.isoformat() if self.after else None,
            "before": self.before.isoformat() if self.before else None,
            "place": self.place,
            "summary": describe(self),
        }


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
#: Northern-hemisphere meteorological seasons: the month each starts in.
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_NUMBERS = {
    word: n
    for n, word in enumerate(
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"), start=1
    )
}
#: Words that may lead a date or a place phrase, and go with it.
_LEADS = ("in", "during", "from", "at", "near")
_YEAR = re.compile(r"(19|20)\d\d")
_ISO_MONTH = re.compile(r"((?:19|20)\d\d)-(0[1-9]|1[0-2])")

Span = tuple[dt.date, dt.date]
#: A rule: (tokens from the phrase's start, today) -> (tokens used, span) or None.
Rule = Callable[[Sequence[str], dt.date], tuple[int, Span] | None]


def understand(
    query: str, *, places: Iterable[str] = (), today: dt.date | None = None, dates: bool = True
) -> Understood:
    """The filters ``query`` states and the words left to search. ``places`` are the
    names the library knows (``Library.place_names()``); ``today`` (default: the
    local date) anchors "last summer" and "two years ago"; ``dates`` False leaves
    dates as words (the caller has its own)."""
    today = dt.date.today() if today is None else today
    words = query.split()
    span, words = _take_dates(words, today) if dates else (None, words)
    place, words = _take_place(words, places)
    text = " ".join(words) or None
    after, before = span if span else (None, None)
    return Understood(text=text, after=after, before=before, place=place)


def understand_query(
    query: SearchQuery, *, places: Iterable[str] = (), today: dt.date | None = None
) -> tuple[SearchQuery, Understood | None]:
    """``query`` with the dates and place its words state turned into filters, and what
    was understood (None, and the query as it was, when the words state neither).

    Filters given by hand win: with ``after`` or ``before`` set the words' dates stay
    words, with ``place`` set their places do."""
    if query.text is None:
        return query, None
    understood = understand(
        query.text,
        places=() if query.place is not None else places,
        today=today,
        dates=query.after is None and query.before is None,
    )
    if not understood.any:
        return query, None
    changes: dict[str, Any] = {"text": understood.text}
    if understood.after is not None:
        changes.update(after=understood.after, before=understood.before)
    if understood.place is not None:
        changes["place"] = understood.place
    return replace(query, **changes), understood


def describe(understood: Understood) -> str:
    """One line: ``taken 2019-06-01..2019-08-31, place Lisbon; searching "beach"``."""
    parts = []
    if understood.after is not None and understood.before is not None:
        last_day = understood.before - dt.timedelta(days=1)
        parts.append(f"taken {understood.after.isoformat()}..{last_day.isoformat()}")
    if understood.place is not None:
        parts.append(f"place {understood.place}")
    searching = f'searching "{understood.text}"' if understood.text else "filters only"
    return f"{', '.join(parts)}; {searching}"


# -- dates ---------------------------------------------------------------------------


def _key(word: str) -> str:
    return fold(word).strip(",.;:!?\"'()")


def _take_dates(words: list[str], today: dt.date) -> tuple[Span | None, list[str]]:
    """The first date phrase in ``words`` (with a leading "in"), and the other words:
    a day written in full ("3 May 2019", "2019-05-03") first, else the grammar's."""
    day = _take_day(words)
    if day is not None:
        return day
    keys = [_key(w) for w in words]
    for start in range(len(keys)):
        for rule in _RULES:
            found = rule(keys[start:], today)
            if found is None:
                continue
            used, span = found
            return span, words[: _lead_start(keys, start)] + words[start + used :]
    return None, words


def _lead_start(keys: Sequence[str], start: int) -> int:
    """Where a phrase at ``start`` begins with the words that lead it: "in", or "in
    the" ("in the summer of 2019")."""
    if start >= 2 and keys[start - 1] == "the" and keys[start - 2] in _LEADS:
        return start - 2
    return start - 1 if start and keys[start - 1] in _LEADS else start


#: A word that holds a year: a day written in full ends with one ("3 May 2019",
#: "May 3rd, 2019", "12/05/2019") or is one ("2019-05-03").
_HOLDS_A_YEAR = re.compile(r"\b(19|20)\d\d\b")
#: A day as the parser found it: ending with its year, or ISO. Not "May 2019 3" in
#: "May 2019 3 kids", where the 3 counts kids.
_WHOLE_DAY = re.compile(r"(\b(19|20)\d\d$)|(\b(19|20)\d\d-\d\d-\d\d\b)")
#: The words before a year a day may take ("on Sunday 3 May 2019"), and the years
#: looked at: the parser is given these few words, never a whole long query.
_DAY_WORDS, _YEARS_TRIED = 4, 3
#: dateparser reads only whole dates, in English: "may", "march" or "fall" alone and
#: phrases relative to today (which the grammar reads as spans) are left alone.
_WHOLE_DATES = {
    "STRICT_PARSING": True,
    "REQUIRE_PARTS": ["day", "month", "year"],
    "RETURN_AS_TIMEZONE_AWARE": False,
}


def _take_day(words: list[str]) -> tuple[Span, list[str]] | None:
    """The first day written in full in ``words``, read by ``dateparser`` (the grammar
    alone where it is not installed), as that day's span; and the other words."""
    years = [at for at, word in enumerate(words) if _HOLDS_A_YEAR.search(word)]
    for at in years[:_YEARS_TRIED]:
        first = max(0, at - _DAY_WORDS)
        window = " ".join(words[first : at + 1])
        if len(re.findall(r"\d+", window)) < 2:
            continue  # a year alone: no day to find, spare the parser
        day = _parse_day(window)
        if day is None:
            continue
        moment, used = day
        begin = at + 1 - used
        if begin and _key(words[begin - 1]) in (*_LEADS, "on"):
            begin -= 1
        return (moment, moment + dt.timedelta(days=1)), words[:begin] + words[at + 1 :]
    return None


def _parse_day(window: str) -> tuple[dt.date, int] | None:
    """The day ``window`` ends with, and how many of its last words say it."""
    try:
        from dateparser.search import search_dates
    except ImportError:
        return None
    for phrase, moment in search_dates(window, languages=["en"], settings=_WHOLE_DATES) or ():
        phrase = phrase.strip()
        if _WHOLE_DAY.search(phrase) and window.endswith(phrase):
            return moment.date(), len(phrase.split())
    return None


def _year(word: str) -> int | None:
    return int(word) if _YEAR.fullmatch(word) else None


def _month_span(year: int, month: int) -> Span:
    end = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
    return dt.date(year, month, 1), end


def _season_span(year: int, season: str) -> Span:
    """A season of ``year``; winter starts in December and ends in the next year."""
    start = dt.date(year, _SEASONS[season], 1)
    end_month = _SEASONS[season] + 3
    end = dt.date(year + 1, end_month - 12, 1) if end_month > 12 else dt.date(year, end_month, 1)
    return start, end


def _season_year(season: str, today: dt.date, last: bool) -> int:
    """The year of "this <season>" (the one under way or to come this year; a winter
    in January or February began the year before) or of "last <season>" (the most
    recent one that is over)."""
    if not last:
        if season == "winter" and today.month < 3:
            return today.year - 1
        return today.year
    year = today.year
    while _season_span(year, season)[1] > today:
        year -= 1
    return year


def _season_and_year(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    """ "summer 2019", "the summer of 2019"."""
    if len(keys) >= 2 and keys[0] in _SEASONS and (year := _year(keys[1])) is not None:
        return 2, _season_span(year, keys[0])
    if len(keys) >= 3 and keys[0] in _SEASONS and keys[1] == "of":
        if (year := _year(keys[2])) is not None:
            return 3, _season_span(year, keys[0])
    return None


def _iso_month(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    """ "2021-07": a month as ISO 8601 writes it."""
    if keys and (found := _ISO_MONTH.fullmatch(keys[0])):
        return 1, _month_span(int(found[1]), int(found[2]))
    return None


def _month_and_year(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    if len(keys) >= 2 and keys[0] in _MONTHS and (year := _year(keys[1])) is not None:
        return 2, _month_span(year, _MONTHS[keys[0]])
    if len(keys) >= 3 and keys[0] in _MONTHS and keys[1] == "of":
        if (year := _year(keys[2])) is not None:
            return 3, _month_span(year, _MONTHS[keys[0]])
    return None


def _in_month(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    """ "in june": the most recent June that has begun. Only after "in" or "during",
    so that "may" the verb and "march" the verb stay words."""
    if len(keys) >= 2 and keys[0] in ("in", "during") and keys[1] in _MONTHS:
        if _month_and_year(keys[1:], today) is not None:
            return None  # "in june 2019": the month and its year, read at "june"
        month = _MONTHS[keys[1]]
        year = today.year if month <= today.month else today.year - 1
        return 2, _month_span(year, month)
    return None


def _relative(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    """this/last year, month or season; last <month name>; yesterday; today."""
    if keys and keys[0] in ("yesterday", "today"):
        day = today - dt.timedelta(days=1) if keys[0] == "yesterday" else today
        return 1, (day, day + dt.timedelta(days=1))
    if len(keys) < 2 or keys[0] not in ("this", "last"):
        return None
    last, unit = keys[0] == "last", keys[1]
    if unit == "year":
        year = today.year - last
        return 2, (dt.date(year, 1, 1), dt.date(year + 1, 1, 1))
    if unit == "month":
        first = today.replace(day=1)
        if last:
            first = (first - dt.timedelta(days=1)).replace(day=1)
        return 2, _month_span(first.year, first.month)
    if unit in _SEASONS:
        return 2, _season_span(_season_year(unit, today, last), unit)
    if last and unit in _MONTHS:  # "this may" is mostly the verb: only "last may"
        month = _MONTHS[unit]
        year = today.year - 1 if month >= today.month else today.year
        return 2, _month_span(year, month)
    return None


def _ago(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    """ "two years ago" (that whole year), "3 months ago" (that whole month)."""
    if len(keys) < 3 or keys[2] != "ago":
        return None
    count = int(keys[0]) if keys[0].isdigit() else _NUMBERS.get(keys[0])
    if not count or count > 200:
        return None
    if keys[1] in ("year", "years"):
        year = today.year - count
        return 3, (dt.date(year, 1, 1), dt.date(year + 1, 1, 1))
    if keys[1] in ("month", "months"):
        index = today.year * 12 + today.month - 1 - count
        return 3, _month_span(index // 12, index % 12 + 1)
    return None


def _in_year(keys: Sequence[str], today: dt.date) -> tuple[int, Span] | None:
    if keys and (year := _year(keys[0])) is not None:
        return 1, (dt.date(year, 1, 1), dt.date(year + 1, 1, 1))
    return None


#: Tried in order at each word: the longer phrases before the bare year.
_RULES: tuple[Rule, ...] = (
    _season_and_year,
    _month_and_year,
    _iso_month,
    _in_month,
    _relative,
    _ago,
    _in_year,
)


# -- places --------------------------------------------------------------------------


def _take_place(words: list[str], places: Iterable[str]) -> tuple[str | None, list[str]]:
    """The first of the library's place names in ``words`` (the longest where names
    overlap, "in"/"at"/"near" before it taken too), and the other words."""
    by_length = sorted({p for p in places if p and p.strip()}, key=lambda p: -len(p.split()))
    keys = [_key(w) for w in words]
    for start in range(len(keys)):
        for place in by_length:
            name = [fold(part) for part in place.split()]
            if keys[start : start + len(name)] == name:
                begin = start - 1 if start and keys[start - 1] in _LEADS else start
                return place, words[:begin] + words[start + len(name) :]
    return None, words
