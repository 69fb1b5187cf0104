"""Semantic + full-text score fusion for text queries.

A text query is scored two ways: by the cosine similarity of its embedding to
the photo's vector (semantic), and by how many of its words appear in the
words read in the photo (full text, SQLite FTS5 over OCR text). The fused
score of a photo is::

    score = cosine + TEXT_WEIGHT * coverage

where ``coverage`` is the share of the query's words (3 or more letters, common
words left out) found in the photo's text, so a photo holding every word of
"invoice 2023" gains TEXT_WEIGHT and one holding half of them half as much.
Photos without a match keep their cosine. The weight is tunable per search
(``Library.search(..., text_weight=)``); ``benchmarks/concepts.py`` measured
the default. ``--text-only`` ranks by coverage alone, bm25 breaking ties.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .store import TextMatch

__all__ = ["TEXT_WEIGHT", "query_words", "fuse", "rank_text_only"]

#: How much a full match of the query's words adds to the cosine score.
TEXT_WEIGHT = 0.3
#: Words shorter than this cannot be found (the full-text index holds trigrams).
MIN_WORD = 3
STOPWORDS = frozenset(
    """
    the and for with from that this these those are was were has have had not but
    all any can its our out who whom what when where which while how why into onto
    over under about above after before photo photos picture pictures image images
    shot says say saying showing shows show some there their they them then than
    """.split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(text: str) -> list[str]:
    """The words of a query that the full-text index can look for, lower-cased, once each."""
    words = []
    for word in _WORD.findall(text.lower()):
        if len(word) >= MIN_WORD and word not in STOPWORDS and word not in words:
            words.append(word)
    return words


def fuse(
    semantic: Iterable[tuple[float, int]],
    matches: dict[int, TextMatch],
    weight: float = TEXT_WEIGHT,
) -> list[tuple[float, int]]:
    """(score, id) best first: each photo's cosine plus ``weight`` × its text coverage.

    ``semantic`` must hold a cosine for every photo in ``matches`` that may be
    returned; photos without a match keep their cosine.
    """
    fused = [
        (score + weight * (matches[i].coverage if i in matches else 0.0), i)
        for score, i in semantic
    ]
    return sorted(fused, key=lambda pair: (-pair[0], pair[1]))


def rank_text_only(matches: dict[int, TextMatch]) -> list[tuple[float, int]]:
    """(coverage, id) best first; among equal coverage, the better bm25 (lower) first."""
    order = sorted(matches, key=lambda i: (-matches[i].coverage, matches[i].bm25, i))
    return [(matches[i].coverage, i) for i in order]
