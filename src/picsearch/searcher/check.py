"""Ask a freshly exported searcher and its library the same questions, and compare."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..encoders.imagenet import class_names
from ..encoders.tiny import COLOURS
from ..library import Library
from .reader import ImageSearcher, SearcherOptions, TextSearcher

__all__ = ["compare_with_library", "probe_texts"]

K = 10


def probe_texts(count: int) -> list[str]:
    """Everyday phrases: colour words, then ImageNet class names spread over the classes."""
    colours = [f"something {colour}" for colour in COLOURS]
    names = class_names()
    step = max(1, len(names) // max(count - len(colours), 1))
    objects = [f"a photo of a {names[i][0]}" for i in range(0, len(names), step)]
    return (colours + objects)[:count]


def compare_with_library(
    library: Library, searcher_file: Path, *, text_probes: int, images: int
) -> dict[str, Any]:
    """Recall@10 of the searcher against the library (1.0: the same ids), per query kind."""
    options = SearcherOptions(max_results=K)
    texts = probe_texts(text_probes)
    searcher = TextSearcher.create_from_file(searcher_file, options)
    pairs = [(searcher.search(t).ids, [h.id for h in library.search(t, k=K)]) for t in texts]
    text_recall, same_order = _agreement(pairs)
    photos = _photos_on_disk(library, images)
    image_recall = None
    if photos:
        image_searcher = ImageSearcher.create_from_file(searcher_file, options)
        pairs = [
            (image_searcher.search(p).ids, [h.id for h in library.search(image=p, k=K)])
            for p in photos
        ]
        image_recall, _ = _agreement(pairs)
    return {
        "text_recall_at_10": text_recall,
        "text_same_order": same_order,
        "image_recall_at_10": image_recall,
        "probes": {"text": len(texts), "image": len(photos)},
    }


def _agreement(pairs: list[tuple[list[int], list[int]]]) -> tuple[float, float]:
    recall = [len(set(got) & set(want)) / max(len(want), 1) for got, want in pairs]
    same = [got == want for got, want in pairs]
    return round(sum(recall) / len(recall), 4), round(sum(same) / len(same), 4)


def _photos_on_disk(library: Library, count: int) -> list[str]:
    ids = library.ids()
    step = max(1, len(ids) // count)
    rows = library.rows(ids[::step][:count])
    return [row.path for row in rows.values() if os.path.isfile(row.path)]
