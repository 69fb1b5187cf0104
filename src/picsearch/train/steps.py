"""One training epoch and one validation pass over cached features.

With ``unfreeze_text`` the text features come from the run's text tower
instead of the cache: live, with gradients, in training; without, in validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .evaluate import KS, caption_ranks, recall_at
from .losses import contrastive_loss

__all__ = ["train_epoch", "validate", "RECALL_IMAGES"]

#: Validation recall is measured on at most this many images (and their captions).
RECALL_IMAGES = 5000


def train_epoch(run: Any, epoch: int) -> float:
    """One pass over the shuffled training pairs; returns the mean loss."""
    torch, options, heads, t = run.torch, run.options, run.heads, run.tensors
    order = np.random.default_rng([options.seed, epoch]).permutation(len(run.pairs))
    torch.manual_seed(options.seed * 1_000_003 + epoch)  # dropout, the same when resumed
    run.train_mode(True)
    size = options.batch_size
    starts = [s for s in range(0, len(order), size) if len(order) - s >= 2]
    total, count = 0.0, 0
    with run.bar(len(starts), epoch) as bar:
        for start in starts:
            rows = torch.from_numpy(order[start : start + size]).to(run.device)
            text_ids, image_ids = t["train_text_ids"][rows], t["train_image_ids"][rows]
            loss = contrastive_loss(
                options.loss,
                heads.text(run.text_features("train", text_ids)),
                heads.image(t["train_image"][image_ids]),
                heads.scale(),
                text_ids=text_ids,
                image_ids=image_ids,
            )
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            total += float(loss.item()) * len(rows)
            count += len(rows)
            bar.update(1)
            bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
    return total / max(count, 1)


def validate(run: Any) -> dict[str, float]:
    """Validation loss (all pairs, in order) and text->image recall@1/5/10."""
    torch, options, heads, t = run.torch, run.options, run.heads, run.tensors
    run.train_mode(False)
    with torch.no_grad():
        text = heads.text(run.text_features("val"))
        image = heads.image(t["val_image"])
        scale = heads.scale()
        total, count = 0.0, 0
        pairs = len(t["val_text_ids"])
        for start in range(0, pairs, options.batch_size):
            text_ids = t["val_text_ids"][start : start + options.batch_size]
            image_ids = t["val_image_ids"][start : start + options.batch_size]
            if len(text_ids) < 2:
                continue
            loss = contrastive_loss(
                options.loss,
                text[text_ids],
                image[image_ids],
                scale,
                text_ids=text_ids,
                image_ids=image_ids,
            )
            total += float(loss.item()) * len(text_ids)
            count += len(text_ids)
    text_np, image_np = text.cpu().numpy(), image.cpu().numpy()
    text_ids, image_ids = run.val.text_ids, run.val.image_ids
    if len(image_np) > RECALL_IMAGES:  # a fixed subset, as the COCO 5k split
        order = np.random.default_rng(options.seed).permutation(len(image_np))
        keep = np.sort(order[:RECALL_IMAGES])
        rows = np.flatnonzero(np.isin(image_ids, keep))
        text_ids, image_ids = text_ids[rows], np.searchsorted(keep, image_ids[rows])
        image_np = image_np[keep]
    ranks = caption_ranks(text_np[text_ids], image_np, image_ids)
    record = {f"val_r@{k}": recall_at(ranks, k) for k in KS}
    record["val_recall"] = float(np.mean(list(record.values())))
    record["val_loss"] = total / max(count, 1)
    return record
