"""One training run's state: heads, optimiser, history, best weights, and its checkpoint.

After every epoch the state is saved to ``checkpoint.pt`` in the output folder
(with ``torch.save``; read back with ``weights_only=True``, so the file holds
tensors and plain values only). A run started again on the same data with
the same options resumes from it; other data or options are refused. With a
text tower (``unfreeze_text``) the checkpoint also holds its unfrozen layers,
and the optimiser state covers them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..encoders.dual_format import write_model_folder
from ..errors import InvalidInput
from .options import TrainOptions, TrainResult
from .pairs import Pairs

__all__ = ["Run", "CHECKPOINT"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


class Run:
    """One training run's mutable state and its checkpoint."""

    def __init__(
        self,
        torch,
        options: TrainOptions,
        pairs: Pairs,
        val: Pairs,
        folder: Path,
        progress: bool,
        device: str = "cpu",
    ) -> None:
        from .heads import DualHeads

        self.torch, self.options, self.folder, self.progress = torch, options, folder, progress
        self.pairs, self.val, self.device = pairs, val, device
        torch.manual_seed(options.seed)
        self.heads = DualHeads(
            text_dim=pairs.text.shape[1],
            image_dim=pairs.image.shape[1],
            dim=options.dim,
            blocks=options.blocks,
            dropout=options.dropout,
            temperature=options.temperature,
        ).to(device)
        self.tower = None
        if options.unfreeze_text:
            from .text_tower import TextTower

            captions = {"train": pairs.captions, "val": val.captions}
            self.tower = TextTower(
                torch, unfreeze=options.unfreeze_text, captions=captions, device=device
            )
        self.optimizer = torch.optim.AdamW(self._groups(), lr=options.lr)
        self.tensors = {
            f"{split}_{name}": torch.from_numpy(np.ascontiguousarray(getattr(part, name))).to(
                device
            )
            for split, part in (("train", pairs), ("val", val))
            for name in ("text", "image", "text_ids", "image_ids")
        }
        self.state: dict[str, Any] = {}
        #: The parity record of the last text base export (unfreeze_text > 0 only).
        self.text_record: dict[str, Any] = {}

    def _groups(self) -> list[dict[str, Any]]:
        options = self.options
        decay = [p for n, p in self.heads.named_parameters() if n != "log_scale"]
        groups = [
            {"params": decay, "weight_decay": options.weight_decay},
            {"params": [self.heads.log_scale], "weight_decay": 0.0},
        ]
        if self.tower is not None:  # a smaller step for the pretrained layers
            groups.append(
                {
                    "params": list(self.tower.trainable.values()),
                    "weight_decay": options.weight_decay,
                    "lr": options.lr * options.text_lr_scale,
                }
            )
        return groups

    def text_features(self, split: str, rows=None):
        """Base text vectors of ``split``'s captions ``rows`` (all of them when None)."""
        if self.tower is None:
            cached = self.tensors[f"{split}_text"]
            return cached if rows is None else cached[rows]
        if rows is not None:
            return self.tower.features(split, rows)
        # A split's captions list those of the other split too: run only its own.
        used = self.torch.unique(self.tensors[f"{split}_text_ids"])
        return self.tower.features_without_grad(split, used)

    def train_mode(self, training: bool) -> None:
        self.heads.train(training)
        if self.tower is not None:
            self.tower.train_mode(training)

    # -- checkpoint ----------------------------------------------------------------
    def start(self, fingerprint: str, restart: bool) -> None:
        self.fingerprint = fingerprint
        path = self.folder / CHECKPOINT
        self.state = {"epoch": 0, "best": None, "bad_epochs": 0, "history": [], "done": False}
        if restart:
            path.unlink(missing_ok=True)  # an interrupted restart must not resume the old run
        if not path.exists():
            return
        try:
            saved = self.torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a damaged file
            raise InvalidInput(f"{path}: unreadable checkpoint ({exc}); use --restart") from None
        if saved.get("fingerprint") != fingerprint:
            raise InvalidInput(
                f"{path} is from a run with other data or options: use --restart to start "
                "over, or another output folder"
            )
        self.heads.load_state_dict(saved["heads"])
        if self.tower is not None:
            self.tower.load_trainable(saved["text"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state = saved["state"]
        self.state["done"] = (
            self.state["bad_epochs"] >= self.options.patience
            or self.state["epoch"] >= self.options.epochs
        )
        log.info("resuming %s after epoch %d", self.folder, self.state["epoch"])

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / CHECKPOINT
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        payload = {
            "fingerprint": self.fingerprint,
            "heads": self.heads.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "state": self.state,
        }
        if self.tower is not None:
            payload["text"] = self.tower.trainable_state()
        try:
            self.torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- the loop ------------------------------------------------------------------
    def loop(self, config: Callable[[], dict], on_epoch) -> None:
        from .steps import train_epoch, validate

        options = self.options
        with logging_redirect_tqdm():
            while not self.state["done"] and self.state["epoch"] < options.epochs:
                epoch = self.state["epoch"] + 1
                started = time.perf_counter()
                loss = train_epoch(self, epoch)
                seconds = time.perf_counter() - started
                record = {"epoch": epoch, "loss": loss, "seconds": round(seconds, 3)}
                record.update(validate(self))
                record["temperature"] = float(1 / self.heads.scale().item())
                self._judge(record, config)
                self.state["epoch"] = epoch
                self.state["done"] = (
                    self.state["bad_epochs"] >= options.patience or epoch >= options.epochs
                )
                self.save()
                if on_epoch is not None:
                    on_epoch(record)
        if self.state["best"] is not None and not (self.folder / "config.json").exists():
            self._write(config)

    def _judge(self, record: dict, config: Callable[[], dict]) -> None:
        options, state = self.options, self.state
        value = record["val_loss"] if options.monitor == "val_loss" else -record["val_recall"]
        best = state["best"]
        improved = best is None or value < best["value"] - 1e-6
        record["best"] = improved
        state["history"].append(record)
        if improved:
            state["best"] = {
                "epoch": record["epoch"],
                "value": float(value),
                "record": record,
                "temperature": record["temperature"],
                "weights": {
                    k: v.detach().cpu().clone() for k, v in self.heads.state_dict().items()
                },
            }
            if self.tower is not None:
                state["best"]["text"] = self.tower.trainable_state()
            state["bad_epochs"] = 0
            self._write(config)
        else:
            state["bad_epochs"] += 1
            if state["bad_epochs"] % max(1, options.patience // 2) == 0:
                for group in self.optimizer.param_groups:
                    group["lr"] *= 0.5
        log.info(_describe(record, options.epochs))

    def _write(self, config: Callable[[], dict]) -> None:
        best = self.state["best"]
        weights = {k: v.float().numpy().copy() for k, v in best["weights"].items()}
        text_base = None
        if self.tower is not None:
            weights.update(self.tower.to_numpy(best["text"]))
            text_base, self.text_record = self.tower.export(best["text"])
        write_model_folder(self.folder, weights, config(), text_base=text_base)

    def seconds_per_epoch(self) -> float:
        times = [r["seconds"] for r in self.state["history"]]
        return round(float(np.mean(times)), 3) if times else 0.0

    def bar(self, total: int, epoch: int):
        desc = f"epoch {epoch}/{self.options.epochs}"
        return tqdm(
            total=total,
            desc=desc,
            unit="batch",
            leave=False,
            disable=None if self.progress else True,
        )

    def result(self, skipped) -> TrainResult:
        best = self.state["best"]
        history = self.state["history"]
        return TrainResult(
            folder=self.folder,
            best_epoch=best["epoch"],
            epochs_run=self.state["epoch"],
            best=best["record"],
            history=history,
            seconds_per_epoch=self.seconds_per_epoch(),
            stopped_early=self.state["epoch"] < self.options.epochs,
            skipped=dict(skipped),
            pairs=len(self.pairs),
            val_pairs=len(self.val),
        )


def _describe(record: dict, epochs: int) -> str:
    recall = "/".join(f"{record[f'val_r@{k}']:.3f}" for k in (1, 5, 10))
    mark = " *" if record["best"] else ""
    return (
        f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, "
        f"val loss {record['val_loss']:.4f}, val text->image R@1/5/10 {recall}, "
        f"{record['seconds']:.1f} s{mark}"
    )
