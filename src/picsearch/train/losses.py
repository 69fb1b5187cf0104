"""Contrastive losses over a batch of (caption, image) pairs, both L2-normalised.

``clip``: symmetric cross-entropy over the caption-image similarity matrix
scaled by the learnable 1/temperature (CLIP). Pairs that share their image or
their caption text are both positives, so repeated captions and several
captions per image are not pushed apart.

``soft``: the Keras dual-encoder example's loss: the targets are the softmax of
the mean of the caption-caption and image-image similarities (not
differentiated), so near-identical pairs share probability mass.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from .options import LOSSES

__all__ = ["LOSSES", "contrastive_loss"]


def contrastive_loss(
    name: str,
    text: torch.Tensor,
    image: torch.Tensor,
    scale: torch.Tensor,
    *,
    text_ids: torch.Tensor,
    image_ids: torch.Tensor,
) -> torch.Tensor:
    """The loss ``name`` of one batch; ``*_ids`` tell which rows repeat a caption or image."""
    logits = scale * text @ image.T
    if name == "clip":
        same = (text_ids[:, None] == text_ids[None, :]) | (image_ids[:, None] == image_ids[None, :])
        targets = same.float()
    elif name == "soft":
        with torch.no_grad():
            similar = (text @ text.T + image @ image.T) / 2
            targets = functional.softmax(scale * similar, dim=1)
    else:
        raise ValueError(f"unknown loss {name!r}: use one of {', '.join(LOSSES)}")
    targets_t = targets.T / targets.T.sum(dim=1, keepdim=True)
    targets = targets / targets.sum(dim=1, keepdim=True)
    caption_loss = functional.cross_entropy(logits, targets)
    image_loss = functional.cross_entropy(logits.T, targets_t)
    return (caption_loss + image_loss) / 2
