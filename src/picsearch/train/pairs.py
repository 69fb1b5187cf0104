"""Caption-image pairs as indices into cached base features, and the validation split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..encoders import Encoder
from ..errors import InvalidInput
from .data import CaptionSet
from .features import FeatureStore, image_features, text_features

__all__ = ["Pairs", "prepare_pairs", "split_validation"]


@dataclass
class Pairs:
    """Pair ``i`` is caption ``text[text_ids[i]]`` with image ``image[image_ids[i]]``.

    ``text`` holds each distinct caption once, so pairs repeating a caption can
    be told apart from pairs that merely look alike; ``captions`` are those
    distinct strings, row for row (for training the text base itself).
    """

    text: np.ndarray
    image: np.ndarray
    text_ids: np.ndarray
    image_ids: np.ndarray
    image_kind: str
    captions: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.text_ids)

    def select(self, rows: np.ndarray) -> Pairs:
        """The pairs ``rows``, with only their images kept."""
        images, image_ids = np.unique(self.image_ids[rows], return_inverse=True)
        return Pairs(
            text=self.text,
            image=self.image[images],
            text_ids=self.text_ids[rows],
            image_ids=image_ids.astype(np.int64),
            image_kind=self.image_kind,
            captions=self.captions,
        )


def prepare_pairs(
    captions: CaptionSet, *, encoder: Encoder, store: FeatureStore, progress: bool = True
) -> tuple[Pairs, Counter[str]]:
    """Base features of a caption set (from the cache, or computed into it)."""
    kind = "visual" if encoder.visual_dim else "joint"
    paths = [str(path) for path in captions.images]
    feats = image_features(paths, encoder=encoder, kinds=(kind,), store=store, progress=progress)
    kept = captions.select_images(feats.usable)
    skipped = Counter(captions.skipped)
    skipped.update(feats.skipped)
    distinct = list(dict.fromkeys(kept.captions))
    position = {text: i for i, text in enumerate(distinct)}
    text = text_features(distinct, encoder=encoder, store=store, progress=progress)
    pairs = Pairs(
        text=text.reshape(len(distinct), -1),
        image=feats.vectors[kind].reshape(len(feats.usable), -1),
        text_ids=np.array([position[c] for c in kept.captions], dtype=np.int64),
        image_ids=kept.caption_image.astype(np.int64),
        image_kind=kind,
        captions=distinct,
    )
    return pairs, skipped


def split_validation(pairs: Pairs, fraction: float, seed: int) -> tuple[Pairs, Pairs]:
    """Hold out ``fraction`` of the images (at least 2), with all their captions."""
    count = len(pairs.image)
    held = max(2, round(fraction * count))
    if count - held < 2:
        raise InvalidInput(
            f"too few images to hold some out for validation ({count}): "
            "give a validation set (--val-captions) or more images"
        )
    chosen = np.random.default_rng(seed).permutation(count)[:held]
    in_val = np.isin(pairs.image_ids, chosen)
    return pairs.select(np.flatnonzero(~in_val)), pairs.select(np.flatnonzero(in_val))
