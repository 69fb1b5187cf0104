"""The training loop: cached base features in, a trained model folder out.

Each epoch shuffles the pairs with a generator seeded by (seed, epoch) and
reseeds torch (dropout) the same way, so a run is deterministic and a resumed
run continues exactly as the uninterrupted one would have. After every epoch
the state (heads, optimiser, best weights, history) is saved to
``checkpoint.pt`` in the output folder; running again with the same data and
options resumes from it. The best epoch (by validation loss or recall) is
written as the model folder whenever it improves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, require
from .data import CaptionSet
from .export import FORMAT
from .features import FeatureStore
from .options import TrainOptions, TrainResult
from .pairs import Pairs, prepare_pairs, split_validation
from .run import Run

__all__ = ["train"]


def train(
    captions: CaptionSet,
    *,
    output: str | os.PathLike[str],
    val: CaptionSet | None = None,
    options: TrainOptions | None = None,
    base: str = "default",
    restart: bool = False,
    progress: bool = True,
    store: FeatureStore | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    threads: int = 1,
) -> TrainResult:
    """Train projection heads on ``captions`` and write the model folder ``output``.

    ``threads`` is torch's thread count for the heads: they are small, and one
    thread is fastest on a busy machine (more spin-wait for each other).
    """
    torch = require("torch", package="torch", extra="default", purpose="training")
    from ..encoders import load_encoder

    options = options or TrainOptions()
    options.check()
    encoder = load_encoder(base)
    opened = FeatureStore() if store is None else None
    try:
        pairs, val_pairs, skipped = _features(
            captions, val, encoder, store or opened, options, progress
        )
    finally:
        if opened is not None:
            opened.close()
    info = {
        "base": {
            "model": base,
            "model_id": encoder.model_id,
            "text_dim": int(pairs.text.shape[1]),
            "image_dim": int(pairs.image.shape[1]),
            "image_space": pairs.image_kind,
        },
        "data": {
            "source": captions.source,
            "pairs": len(pairs),
            "images": len(pairs.image),
            "val_pairs": len(val_pairs),
            "val_images": len(val_pairs.image),
            "skipped": dict(skipped),
        },
    }
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        run = Run(torch, options, pairs, val_pairs, Path(output).expanduser(), progress)
        run.start(_fingerprint(options, encoder.model_id, pairs, val_pairs), restart)
        run.loop(lambda: _config(options, info, run), on_epoch)
    finally:
        torch.set_num_threads(before)
    return run.result(skipped)


def _features(captions, val, encoder, store, options, progress) -> tuple[Pairs, Pairs, Counter]:
    """Training and validation pairs over cached base features, and what was skipped."""
    pairs, skipped = prepare_pairs(captions, encoder=encoder, store=store, progress=progress)
    if val is None:
        pairs, val_pairs = split_validation(pairs, options.val_fraction, options.seed)
    else:
        val_pairs, val_skipped = prepare_pairs(val, encoder=encoder, store=store, progress=progress)
        skipped.update({f"validation {k}": v for k, v in val_skipped.items()})
    if len(pairs) < 2 or len(val_pairs) < 2:
        raise InvalidInput(
            f"{captions.source}: too few usable pairs to train on ({len(pairs)} for training, "
            f"{len(val_pairs)} for validation; skipped: {dict(skipped) or 'none'})"
        )
    return pairs, val_pairs, skipped


def _config(options: TrainOptions, info: dict, run: Run) -> dict[str, Any]:
    best = run.state["best"]
    return {
        "format": FORMAT,
        "version": 1,
        "base": info["base"],
        "dim": options.dim,
        "blocks": options.blocks,
        "dropout": options.dropout,
        "loss": options.loss,
        "temperature": best["temperature"],
        "training": {**dataclasses.asdict(options), **info["data"]},
        "metrics": {
            "best_epoch": best["epoch"],
            "best": best["record"],
            "history": run.state["history"],
            "seconds_per_epoch": run.seconds_per_epoch(),
        },
    }


def _fingerprint(options: TrainOptions, base_id: str, pairs: Pairs, val: Pairs) -> str:
    digest = hashlib.sha256()
    fixed = dataclasses.asdict(options)
    fixed.pop("epochs")  # more epochs may be asked of a resumed run
    digest.update(json.dumps([fixed, base_id], sort_keys=True).encode())
    for part in (pairs, val):
        for array in (part.text_ids, part.image_ids, part.text, part.image):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:24]
