"""MiniLM with its last layers trainable, for ``TrainOptions.unfreeze_text``.

The text base is the default model's own mean-pooled, L2-normalised MiniLM
(``encoders.minilm.mean_pooled_minilm``). Every layer stays frozen except the
last ``unfreeze`` transformer layers of ``encoder.layer``; those run in train
mode (with the model's own dropout), the rest in eval mode. Captions are
tokenized once, at most ``CAPTION_TOKENS`` tokens each, and each batch computes
its distinct captions' features live, so gradients reach the unfrozen layers.

The trained layers travel as plain tensors (``trainable_state``) in the
checkpoint and as ``text_base/<name>`` float32 arrays in the model folder's
``heads.npz``; the whole fine-tuned base is exported to ONNX for search.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import onnx_export
from ..encoders.minilm import mean_pooled_minilm, minilm_tokenizer, text_export_spec
from ..errors import InvalidInput

__all__ = ["TextTower", "CAPTION_TOKENS", "PREFIX", "MAX_UNFROZEN", "resolve_device"]

#: Training captions are cut at this many tokens (COCO captions average about 14).
CAPTION_TOKENS = 64
#: Names of the trained layers' arrays in heads.npz start with this.
PREFIX = "text_base/"
#: MiniLM-L6 has six transformer layers.
MAX_UNFROZEN = 6
_CHUNK = 256  # captions per no-grad forward pass


def resolve_device(torch: Any, name: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is refused."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("device 'cuda' asked for, but torch sees no CUDA GPU: use auto or cpu")
    return name


class TextTower:
    """The mean-pooled MiniLM with its last ``unfreeze`` layers trainable.

    ``captions`` maps a split name (``train``, ``val``) to its distinct caption
    strings; :meth:`features` takes row numbers into them.
    """

    def __init__(
        self,
        torch: Any,
        *,
        unfreeze: int,
        captions: dict[str, list[str]] | None = None,
        device: str = "cpu",
    ) -> None:
        self.torch, self.device = torch, device
        self.module = mean_pooled_minilm().to(device)
        self.layers = self.module.model.encoder.layer
        if not 1 <= unfreeze <= len(self.layers):
            raise InvalidInput(f"unfreeze_text must be 1..{len(self.layers)}, not {unfreeze}")
        self.first = len(self.layers) - unfreeze
        names = tuple(f"model.encoder.layer.{i}." for i in range(self.first, len(self.layers)))
        self.trainable = {
            name: p for name, p in self.module.named_parameters() if name.startswith(names)
        }
        for name, parameter in self.module.named_parameters():
            parameter.requires_grad_(name in self.trainable)
        tokenizer = minilm_tokenizer(CAPTION_TOKENS)
        self.tokens = {
            split: self._tokenize(tokenizer, texts) for split, texts in (captions or {}).items()
        }
        self.train_mode(False)

    def _tokenize(self, tokenizer: Any, texts: list[str]) -> tuple[Any, Any]:
        encodings = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(texts), -1)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64).reshape(ids.shape)
        as_tensor = self.torch.from_numpy
        return as_tensor(ids).to(self.device), as_tensor(mask).to(self.device)

    def train_mode(self, training: bool) -> None:
        """Frozen layers always in eval mode; the unfrozen ones follow ``training``."""
        self.module.eval()
        for layer in self.layers[self.first :]:
            layer.train(training)

    def _run(self, ids: Any, mask: Any) -> Any:
        width = max(1, int(mask.sum(dim=1).max()))  # drop columns that are padding everywhere
        return self.module(ids[:, :width], mask[:, :width])

    def features(self, split: str, rows: Any) -> Any:
        """Base text vectors of captions ``rows`` of ``split`` (each distinct one run once)."""
        ids, mask = self.tokens[split]
        unique, inverse = self.torch.unique(rows, return_inverse=True)
        return self._run(ids[unique], mask[unique])[inverse]

    def features_without_grad(self, split: str, rows: Any) -> Any:
        """Vectors of every caption of ``split``: rows ``rows`` computed (in chunks), others 0."""
        ids, mask = self.tokens[split]
        width = self.module.model.config.hidden_size
        out = self.torch.zeros((len(ids), width), device=self.device)
        with self.torch.no_grad():
            for start in range(0, len(rows), _CHUNK):
                part = rows[start : start + _CHUNK]
                out[part] = self._run(ids[part], mask[part])
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        """Texts (tokenized as queries are, up to 256 tokens) to base vectors, in eval mode."""
        ids, mask = self._tokenize(minilm_tokenizer(), texts)
        self.train_mode(False)
        with self.torch.no_grad():
            return self._run(ids, mask).cpu().numpy()

    # -- weights -------------------------------------------------------------------
    def trainable_state(self) -> dict[str, Any]:
        """A CPU copy of the unfrozen layers' weights."""
        return {name: p.detach().cpu().clone() for name, p in self.trainable.items()}

    def load_trainable(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.trainable):
            raise InvalidInput("the saved text layers do not match unfreeze_text: use --restart")
        with self.torch.no_grad():
            for name, value in state.items():
                self.trainable[name].copy_(value)

    @staticmethod
    def to_numpy(state: dict[str, Any]) -> dict[str, np.ndarray]:
        return {PREFIX + name: v.float().numpy().copy() for name, v in state.items()}

    @staticmethod
    def from_numpy(torch: Any, weights: dict[str, np.ndarray]) -> dict[str, Any]:
        """The ``text_base/`` arrays of ``weights`` as a state for :meth:`load_trainable`."""
        return {
            name[len(PREFIX) :]: torch.from_numpy(np.array(array))
            for name, array in weights.items()
            if name.startswith(PREFIX)
        }

    def export(self, state: dict[str, Any]) -> tuple[bytes, dict]:
        """The base with ``state`` loaded, as a checked ONNX graph, and its parity record."""
        module = copy.deepcopy(self.module).cpu().eval()
        with self.torch.no_grad():
            for name, parameter in module.named_parameters():
                if name in state:
                    parameter.copy_(state[name])
        with tempfile.TemporaryDirectory(prefix="picsearch-text-base-") as tmp:
            path = Path(tmp) / "text_base.onnx"
            record = onnx_export.export_onnx(path, lambda: text_export_spec(module))
            return path.read_bytes(), dict(record or {})
