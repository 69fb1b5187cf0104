"""A local Hugging Face CLIP or SigLIP folder, checked before anything heavy is loaded.

The folder holds what ``save_pretrained`` writes: ``config.json``, the weights
(``model.safetensors`` or ``pytorch_model.bin``, possibly sharded), the
tokenizer files and ``preprocessor_config.json``. Each thing missing or
unreadable is refused with a message naming it and what was expected.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .model_checks import pickle_allowed, refuse_pickle, sampled_digest

__all__ = ["SUPPORTED_MODEL_TYPES", "EXPECTED", "ClipFolder", "read_clip_folder"]

log = logging.getLogger(__name__)

#: config.json "model_type" values this encoder loads.
SUPPORTED_MODEL_TYPES = ("clip", "siglip")
#: What a folder must hold, for messages.
EXPECTED = (
    "a Hugging Face CLIP or SigLIP model folder (config.json with model_type "
    "'clip' or 'siglip', model.safetensors or pytorch_model.bin, tokenizer files, "
    "preprocessor_config.json), as save_pretrained() writes it"
)
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")


@dataclass(frozen=True)
class ClipFolder:
    """A checked model folder: its config, weight files and image processor settings."""

    path: Path
    config: dict[str, Any]
    model_type: str
    #: config.json, then the weight files (or the shard index and its shards).
    files: list[Path]
    #: The image processor's settings ({} when the folder has none).
    processor: dict[str, Any]
    #: The name the model goes by (the folder's, or the Hugging Face repository's).
    name: str = ""

    @property
    def dim(self) -> int:
        """The width of the joint space."""
        if self.model_type == "clip":
            return int(self.config.get("projection_dim", 512))
        text = self.config.get("text_config") or {}
        return int(text.get("projection_size") or text.get("hidden_size", 768))

    @property
    def max_tokens(self) -> int:
        text = self.config.get("text_config") or {}
        return int(text.get("max_position_embeddings", 77 if self.model_type == "clip" else 64))

    @property
    def image_size(self) -> int:
        return int((self.config.get("vision_config") or {}).get("image_size", 224))

    @property
    def model_id(self) -> str:
        """The folder's name and a digest of its config and weights."""
        return f"clip:{self.name or self.path.name}-{_sampled_digest(self.files)}"


def read_clip_folder(
    path: str | os.PathLike[str], *, name: str | None = None, allow_pickle: bool | None = None
) -> ClipFolder:
    """The folder at ``path``, checked to hold a CLIP-like model; pickled weights only
    where ``allow_pickle`` (default: :func:`pickle_allowed`)."""
    if not str(path).strip():
        raise InvalidInput(f"the clip model needs a folder: use clip:/path/to/folder ({EXPECTED})")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: no such folder; expected {EXPECTED}")
    folder = folder.resolve()
    config = _read_config(folder)
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise InvalidInput(
            f"{folder}: config.json says model_type {model_type!r}, not a CLIP-like model; "
            f"expected {EXPECTED}"
        )
    weights = _weight_files(folder)
    pickled = not any(".safetensors" in weight.name for weight in weights)
    if pickled and not (pickle_allowed() if allow_pickle is None else allow_pickle):
        raise refuse_pickle(weights[-1])
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise InvalidInput(f"{folder}: no tokenizer files; expected {EXPECTED}")
    processor = _processor_settings(folder, model_type)
    files = [folder / "config.json", *weights]
    return ClipFolder(folder, config, model_type, files, processor, name or folder.name)


def _read_config(folder: Path) -> dict[str, Any]:
    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{folder}: no config.json; expected {EXPECTED}") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{config_file}: unreadable ({exc}); expected {EXPECTED}") from None
    return config if isinstance(config, dict) else {}


def _weight_files(folder: Path) -> list[Path]:
    """The weights file, or the shard index followed by every shard it names."""
    weights = [folder / name for name in _WEIGHT_FILES if (folder / name).is_file()]
    if not weights:
        raise InvalidInput(f"{folder}: no model weights found; expected {EXPECTED}")
    if not weights[0].name.endswith(".index.json"):
        return weights
    try:
        index = json.loads(weights[0].read_text(encoding="utf-8"))
        shards = sorted(set(index["weight_map"].values()))
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{weights[0]}: unreadable shard index ({exc})") from None
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise InvalidInput(f"{folder}: weight shards missing: {', '.join(missing)}")
    return weights[:1] + [folder / s for s in shards]


def _processor_settings(folder: Path, model_type: str) -> dict[str, Any]:
    processor_file = folder / "preprocessor_config.json"
    if not processor_file.is_file():
        log.warning("%s: no preprocessor_config.json; using %s defaults", folder, model_type)
        return {}
    try:
        processor = json.loads(processor_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{processor_file}: unreadable ({exc})") from None
    return processor.get("image_processor", processor)  # processor_config layout


def _sampled_digest(paths: list[Path]) -> str:
    # Five bytes, as model ids of CLIP folders have always had: libraries keep their id.
    return sampled_digest(paths, digest_size=5)
