"""Training options and what a training run reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

__all__ = ["TrainOptions", "TrainResult", "MONITORS", "LOSSES", "DEVICES", "TEXT_LAYERS"]

MONITORS = ("val_loss", "val_recall")
LOSSES = ("clip", "soft")
DEVICES = ("auto", "cpu", "cuda")
#: MiniLM-L6's transformer layers: at most this many can be unfrozen.
TEXT_LAYERS = 6


@dataclass(frozen=True)
class TrainOptions:
    """Head sizes, loss and optimisation settings of ``train``.

    ``monitor`` picks what early stopping and the best checkpoint follow:
    ``val_loss`` (lower is better) or ``val_recall`` (mean text->image
    recall@1/5/10 on the validation set). Training stops after ``patience``
    epochs without improvement; the learning rate halves after every
    ``patience // 2`` of them. Without a validation set, ``val_fraction`` of
    the images (chosen by ``seed``) are held out for validation.

    ``unfreeze_text`` (0..6) of MiniLM's last transformer layers train with the
    heads, at ``lr * text_lr_scale``; their text features are then computed
    live each batch instead of read from the cache. ``device`` is where torch
    trains: ``auto`` (CUDA when available, else the CPU), ``cpu`` or ``cuda``.
    """

    dim: int = 256
    blocks: int = 1
    dropout: float = 0.1
    loss: str = "clip"
    temperature: float = 0.07
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-3
    patience: int = 5
    monitor: str = "val_loss"
    val_fraction: float = 0.05
    seed: int = 0
    unfreeze_text: int = 0
    text_lr_scale: float = 0.05
    device: str = "auto"

    def check(self) -> None:
        """Raise InvalidInput naming the first option out of range."""
        whole = {"dim": 1, "epochs": 1, "batch_size": 2, "patience": 1, "blocks": 0}
        for name, least in whole.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise InvalidInput(f"{name} must be a whole number >= {least}, not {value!r}")
        if not 0 <= self.dropout < 1:
            raise InvalidInput(f"dropout must be in [0, 1), not {self.dropout}")
        if not 0 < self.val_fraction < 1:
            raise InvalidInput(f"val_fraction must be between 0 and 1, not {self.val_fraction}")
        if not (self.temperature > 0 and self.lr > 0 and self.weight_decay >= 0):
            raise InvalidInput("temperature and lr must be positive, weight_decay not negative")
        if self.loss not in LOSSES:
            raise InvalidInput(f"unknown loss '{self.loss}': use one of {', '.join(LOSSES)}")
        if self.monitor not in MONITORS:
            raise InvalidInput(f"unknown monitor '{self.monitor}': use {' or '.join(MONITORS)}")
        self._check_text()

    def _check_text(self) -> None:
        value = self.unfreeze_text
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= TEXT_LAYERS:
            raise InvalidInput(
                f"unfreeze_text must be a whole number from 0 to {TEXT_LAYERS} "
                f"(MiniLM's layers), not {value!r}"
            )
        if not self.text_lr_scale > 0:
            raise InvalidInput(f"text_lr_scale must be positive, not {self.text_lr_scale}")
        if self.device not in DEVICES:
            raise InvalidInput(f"unknown device '{self.device}': use one of {', '.join(DEVICES)}")


@dataclass
class TrainResult:
    """What a training run did; ``best`` is the validation record of the kept epoch."""

    folder: Path
    best_epoch: int
    epochs_run: int
    best: dict[str, Any]
    history: list[dict[str, Any]]
    seconds_per_epoch: float
    stopped_early: bool
    pairs: int
    val_pairs: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def model_spec(self) -> str:
        return f"dual:{self.folder}"

    def __str__(self) -> str:
        best = self.best
        recall = "/".join(f"{best[f'val_r@{k}']:.3f}" for k in (1, 5, 10))
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (
            f"{self.folder}: best epoch {self.best_epoch} of {self.epochs_run} "
            f"(val loss {best['val_loss']:.4f}, val text->image R@1/5/10 {recall}); "
            f"{self.pairs} training pairs, {self.val_pairs} validation pairs, "
            f"{self.seconds_per_epoch:.2f} s per epoch; skipped: {skipped}"
        )
