"""Models in the local Hugging Face cache (``--model clip:ORG/NAME``), through
huggingface_hub's own cache functions.

A model is looked up in the cache only (``local_files_only``): nothing is ever
downloaded to answer a search or an index. :func:`pull` downloads on purpose
(``picsearch models pull ORG/NAME``), with huggingface_hub's progress bar, and
leaves pickled weights behind unless they are allowed.

The cache is ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache`` without it), read each time, so
that a changed environment is honoured in a running process too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, require

__all__ = ["CachedRepo", "is_repo_id", "cache_folder", "cached_snapshot", "cached_repos", "pull"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Files a pull leaves behind: other frameworks' weights, other devices' graphs.
_NOT_NEEDED = ["*.h5", "*.msgpack", "*.ot", "*.ckpt", "*.armnn", "*.rknn", "*.tflite", "*.mlmodel"]
_PICKLES = ["*.bin", "*.pt", "*.pth", "*.pkl"]


def _hub() -> Any:
    return require(
        "huggingface_hub", package="huggingface_hub", extra="clip", purpose="Hugging Face models"
    )


def is_repo_id(text: str) -> bool:
    """Whether ``text`` reads as a Hugging Face repository id (``ORG/NAME``)."""
    return bool(_REPO_ID.match(text)) and ".." not in text


def cache_folder() -> Path:
    """The Hugging Face hub cache this process sees."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def cached_snapshot(repo_id: str) -> Path:
    """The folder of ``repo_id``'s cached snapshot (its ``main``); never downloads."""
    hub = _hub()
    try:
        return Path(hub.snapshot_download(repo_id, cache_dir=cache_folder(), local_files_only=True))
    except (hub.errors.LocalEntryNotFoundError, FileNotFoundError):
        raise InvalidInput(
            f"{repo_id}: not in the Hugging Face cache ({cache_folder()}): run "
            f"'picsearch models pull {repo_id}' to download it, or give a model folder"
        ) from None
    except hub.errors.HFValidationError as exc:
        raise InvalidInput(f"{repo_id}: not a Hugging Face model id ({exc})") from None


@dataclass(frozen=True)
class CachedRepo:
    """A model repository in the cache: its id, the snapshot folder and its size."""

    repo_id: str
    snapshot: Path
    size_bytes: int


def cached_repos() -> list[CachedRepo]:
    """The cached model repositories, each with the snapshot ``main`` points to (else its
    newest), sorted by id."""
    hub = _hub()
    folder = cache_folder()
    if not folder.is_dir():
        return []
    try:
        info = hub.scan_cache_dir(folder)
    except hub.errors.CacheNotFound:
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revisions = sorted(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
        found.append(CachedRepo(repo.repo_id, Path(revisions[-1].snapshot_path), repo.size_on_disk))
    return sorted(found, key=lambda r: r.repo_id.lower())


def pull(repo_id: str, *, allow_pickle: bool = False) -> Path:
    """Download ``repo_id`` into the cache (what is there already is kept), with a
    progress bar on stderr; returns its snapshot folder."""
    if not is_repo_id(repo_id):
        raise InvalidInput(f"{repo_id!r}: not a Hugging Face model id; expected ORG/NAME")
    hub = _hub()
    ignore = _NOT_NEEDED if allow_pickle else _NOT_NEEDED + _PICKLES
    try:
        path = hub.snapshot_download(repo_id, cache_dir=cache_folder(), ignore_patterns=ignore)
    except (hub.errors.HfHubHTTPError, hub.errors.LocalEntryNotFoundError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{repo_id}: could not download ({reason})") from None
    except (hub.errors.HFValidationError, OSError) as exc:
        raise InvalidInput(f"{repo_id}: could not download ({exc})") from None
    return Path(path)
