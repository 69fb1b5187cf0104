"""The training loop: cached base features in, a trained model folder out.

Each epoch shuffles the pairs with a generator seeded by (seed, epoch) and
reseeds torch (dropout) the same way, so a run is deterministic and a resumed
run continues exactly as the uninterrupted one would have. After every epoch
the state (heads, optimiser, best weights, history) is saved to
``checkpoint.pt`` in the output folder; running again with the same data and
options resumes from it. The best epoch (by validation loss or recall) is
written as the model folder whenever it improves.

With ``unfreeze_text`` MiniLM's last layers train too (see ``text_tower``);
the image features stay cached and frozen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import Encoder, load_encoder, onnx_export
from ..encoders.default import DefaultEncoder
from ..encoders.dual_format import FORMAT, TEXT_BASE
from ..errors import InvalidInput, require
from .data import CaptionSet
from .features import FeatureStore
from .options import TrainOptions, TrainResult
from .pairs import Pairs, prepare_pairs, split_validation
from .run import Run
from .text_tower import CAPTION_TOKENS, resolve_device

__all__ = ["train"]

log = logging.getLogger(__name__)


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
    threads: int | None = None,
) -> TrainResult:
    """Train projection heads on ``captions`` and write the model folder ``output``.

    ``threads`` is torch's thread count on the CPU. By default it is one for the
    heads alone (they are small, and more threads spin-wait for each other on a
    busy machine) and every core when MiniLM's layers train too.
    """
    torch = require("torch", package="torch", extra="default", purpose="training")
    options = options or TrainOptions()
    options.check()
    device = _device(torch, options)
    if threads is None:
        threads = onnx_export.num_threads() if options.unfreeze_text else 1
    encoder = load_encoder(base)
    if options.unfreeze_text and not isinstance(encoder, DefaultEncoder):
        raise InvalidInput(f"unfreeze_text trains MiniLM: it needs the default base, not '{base}'")
    cache = store if store is not None else FeatureStore()
    try:
        pairs, val_pairs, skipped = _features(captions, val, encoder, cache, options, progress)
    finally:
        if store is None:
            cache.close()
    info = {
        "base": _base_info(base, encoder, pairs),
        "data": _data_info(captions, pairs, val_pairs, skipped),
    }
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        folder = Path(output).expanduser()
        run = Run(torch, options, pairs, val_pairs, folder, progress, device=device)
        run.start(_fingerprint(options, encoder.model_id, pairs, val_pairs), restart)
        run.loop(lambda: _config(options, info, run), on_epoch)
    finally:
        torch.set_num_threads(before)
    return run.result(skipped)


def _device(torch: Any, options: TrainOptions) -> str:
    """Where torch trains, with a warning when MiniLM's layers would train on the CPU."""
    device = resolve_device(torch, options.device)
    if options.unfreeze_text and device == "cpu":
        log.warning(
            "training MiniLM's last %d layer(s) on the CPU: each epoch runs the text model "
            "forward and backward, which is slow without a GPU",
            options.unfreeze_text,
        )
    return device


def _base_info(spec: str, encoder: Encoder, pairs: Pairs) -> dict[str, Any]:
    """The base encoder as the model folder's config records it."""
    return {
        "model": spec,
        "model_id": encoder.model_id,
        "text_dim": int(pairs.text.shape[1]),
        "image_dim": int(pairs.image.shape[1]),
        "image_space": pairs.image_kind,
    }


def _data_info(captions: CaptionSet, pairs: Pairs, val: Pairs, skipped: Counter) -> dict[str, Any]:
    return {
        "source": captions.source,
        "pairs": len(pairs),
        "images": len(pairs.image),
        "val_pairs": len(val),
        "val_images": len(val.image),
        "skipped": dict(skipped),
    }


def _features(
    captions: CaptionSet,
    val: CaptionSet | None,
    encoder: Encoder,
    store: FeatureStore,
    options: TrainOptions,
    progress: bool,
) -> tuple[Pairs, Pairs, Counter]:
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
    config = {
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
    if options.unfreeze_text:  # folders without a trained text base keep their old shape
        config["unfreeze_text"] = options.unfreeze_text
        config["text_base"] = {
            "onnx": TEXT_BASE,
            "caption_tokens": CAPTION_TOKENS,
            "text_lr_scale": options.text_lr_scale,
            "parity": run.text_record,
        }
    return config


def _fingerprint(options: TrainOptions, base_id: str, pairs: Pairs, val: Pairs) -> str:
    digest = hashlib.sha256()
    fixed = dataclasses.asdict(options)
    fixed.pop("epochs")  # more epochs may be asked of a resumed run
    fixed.pop("device")  # a run may resume on another device
    if not options.unfreeze_text:  # as before these options existed: old checkpoints resume
        fixed.pop("unfreeze_text")
        fixed.pop("text_lr_scale")
    digest.update(json.dumps([fixed, base_id], sort_keys=True).encode())
    for part in (pairs, val):
        for array in (part.text_ids, part.image_ids, part.text, part.image):
            digest.update(np.ascontiguousarray(array).tobytes())
        if options.unfreeze_text:  # the text base reads the strings themselves
            digest.update(json.dumps(part.captions).encode())
    return digest.hexdigest()[:24]
