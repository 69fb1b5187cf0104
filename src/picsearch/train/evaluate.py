"""Retrieval metrics on captioned images, and the evaluation of a model on a captioned set.

- text -> image recall@K: the fraction of captions whose own image is among
  the K images closest to the caption;
- image -> text recall@K: the fraction of images with at least one of their own
  captions among the K captions closest to the image;
- top-k accuracy as the Keras dual-encoder example reports it: each image's
  first caption is the query, a hit when the image is among the k closest;
- class mAP: one query per class label ("a photo of a sneaker"), the images of
  that class are relevant; mean over classes of the average precision.

Ties count against the right answer, so a model that gives every image the
same vector scores as badly as it should.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..encoders import Encoder, ProjectsBase, load_encoder
from .data import CaptionSet
from .features import FeatureStore, image_features, text_features

__all__ = [
    "KS",
    "caption_ranks",
    "image_ranks",
    "recall_at",
    "average_precision",
    "class_map",
    "class_query",
    "RetrievalReport",
    "retrieval_report",
    "evaluate_model",
]

KS = (1, 5, 10)
_CHUNK = 1024


def caption_ranks(text: np.ndarray, image: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """0-based rank of each caption's own image among all images (by dot product)."""
    ranks = np.empty(len(text), dtype=np.int64)
    for start in range(0, len(text), _CHUNK):
        scores = text[start : start + _CHUNK] @ image.T
        own = scores[np.arange(len(scores)), caption_image[start : start + _CHUNK]]
        ranks[start : start + len(scores)] = (scores >= own[:, None]).sum(axis=1) - 1
    return ranks


def image_ranks(text: np.ndarray, image: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """0-based rank of each image's best own caption among all captions (-1: no caption)."""
    ranks = np.full(len(image), -1, dtype=np.int64)
    step = max(1, 16_000_000 // max(1, len(text)))  # about 64 MB of scores at a time
    for start in range(0, len(image), step):
        scores = image[start : start + step] @ text.T  # (chunk, captions)
        owner = caption_image[None, :] == np.arange(start, start + len(scores))[:, None]
        best = np.where(owner, scores, -np.inf).max(axis=1)
        others = np.where(owner, -np.inf, scores)
        has = np.isfinite(best)
        ranks[start : start + len(scores)] = np.where(
            has, (others >= best[:, None]).sum(axis=1), -1
        )
    return ranks


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Fraction of the (non-negative) ranks below k."""
    ranks = ranks[ranks >= 0]
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Average precision of ranking by ``scores`` (descending; ties against the relevant)."""
    relevant = np.asarray(relevant, dtype=bool)
    if not relevant.any():
        return 0.0
    order = np.lexsort((relevant, -scores))  # among equal scores, irrelevant first
    hits = relevant[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def class_map(
    queries: np.ndarray, image: np.ndarray, labels: np.ndarray
) -> tuple[float, list[float]]:
    """Mean average precision of query ``c`` retrieving the images with label ``c``."""
    scores = queries @ image.T
    aps = [average_precision(scores[c], labels == c) for c in range(len(queries))]
    return float(np.mean(aps)) if aps else 0.0, aps


def class_query(template: str, label: str) -> str:
    """``template`` with ``{label}`` filled in, and "a" before a vowel made "an"."""
    text = template.format(label=label)
    for vowel in "aeiou":
        text = text.replace(f" a {vowel}", f" an {vowel}")
        if text.startswith(f"a {vowel}"):
            text = "an" + text[1:]
    return text


@dataclass
class RetrievalReport:
    """One model's retrieval figures on one captioned set."""

    model: str
    images: int
    captions: int
    text_to_image: dict[int, float]
    image_to_text: dict[int, float]
    top_k: int
    top_k_accuracy: float
    class_map: float | None = None
    class_ap: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["text_to_image"] = {f"R@{k}": v for k, v in self.text_to_image.items()}
        data["image_to_text"] = {f"R@{k}": v for k, v in self.image_to_text.items()}
        return data


def retrieval_report(
    text: np.ndarray,
    image: np.ndarray,
    caption_image: np.ndarray,
    *,
    model: str = "",
    ks: Sequence[int] = KS,
    top_k: int = 100,
    first_captions: np.ndarray | None = None,
) -> RetrievalReport:
    """Recall@K both ways and the top-k accuracy from L2-normalised vectors."""
    t2i = caption_ranks(text, image, caption_image)
    i2t = image_ranks(text, image, caption_image)
    if first_captions is None:
        first_captions = np.full(len(image), -1, dtype=np.int64)
        for caption in range(len(caption_image) - 1, -1, -1):
            first_captions[caption_image[caption]] = caption
    first = first_captions[first_captions >= 0]
    return RetrievalReport(
        model=model,
        images=len(image),
        captions=len(text),
        text_to_image={k: recall_at(t2i, k) for k in ks},
        image_to_text={k: recall_at(i2t, k) for k in ks},
        top_k=top_k,
        top_k_accuracy=recall_at(t2i[first], top_k),
    )


def evaluate_model(
    model: str | Encoder,
    captions: CaptionSet,
    *,
    top_k: int = 100,
    class_template: str = "a photo of a {label}",
    store: FeatureStore | None = None,
    progress: bool = True,
) -> RetrievalReport:
    """Embed a CaptionSet with a model (through the feature cache) and score retrieval."""
    encoder = load_encoder(model) if isinstance(model, str) else model
    name = model if isinstance(model, str) else encoder.model_id
    cache = store if store is not None else FeatureStore()
    try:
        return _evaluate(encoder, name, captions, cache, top_k, class_template, progress)
    finally:
        if store is None:
            cache.close()


def _evaluate(
    encoder: Encoder,
    name: str,
    captions: CaptionSet,
    store: FeatureStore,
    top_k: int,
    class_template: str,
    progress: bool,
) -> RetrievalReport:
    image, kept = _image_vectors(encoder, captions, store, progress)
    text = _text_vectors(encoder, kept.captions, store, progress)
    report = retrieval_report(text, image, kept.caption_image, model=name, top_k=top_k)
    report.skipped = dict(kept.skipped)
    if kept.labels is not None:
        names = sorted({label for label in kept.labels if label is not None})
        labels = np.array([names.index(x) if x is not None else -1 for x in kept.labels])
        queries = _text_vectors(encoder, [class_query(class_template, n) for n in names], store)
        report.class_map, aps = class_map(queries, image, labels)
        report.class_ap = dict(zip(names, aps, strict=True))
    return report


def _image_vectors(
    encoder: Encoder, captions: CaptionSet, store: FeatureStore, progress: bool
) -> tuple[np.ndarray, CaptionSet]:
    paths = [str(p) for p in captions.images]
    heads = encoder if isinstance(encoder, ProjectsBase) else None  # over cached base features
    source, kind = (heads.base, heads.base_kind) if heads else (encoder, "joint")
    feats = image_features(paths, encoder=source, kinds=(kind,), store=store, progress=progress)
    vectors = heads.joint_from_base(feats.vectors[kind]) if heads else feats.vectors[kind]
    kept = captions.select_images(feats.usable)
    kept.skipped.update(feats.skipped)
    return vectors.reshape(len(feats.usable), -1), kept


def _text_vectors(
    encoder: Encoder, texts: Sequence[str], store: FeatureStore, progress: bool = False
) -> np.ndarray:
    if isinstance(encoder, ProjectsBase):  # heads over cached base features
        base = text_features(texts, encoder=encoder.base, store=store, progress=progress)
        return encoder.text_from_base(base)
    return text_features(texts, encoder=encoder, store=store, progress=progress)
