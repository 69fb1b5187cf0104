"""Encoder outputs computed once and kept on disk, keyed by content and model id.

Training runs many epochs over the same images and captions through frozen
encoders, so their vectors are computed once and stored in
``cache_dir()/features/features.db`` (SQLite): one row per (model id, kind,
key), where the key is the image file's SHA-256 (as indexing computes it) or
the caption text's. Each batch is committed as it is embedded, so an
interrupted run loses nothing it finished. Images that cannot be used are
skipped, counted and named in a warning.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..encoders import Encoder
from ..images import DEFAULT_MAX_PIXELS, Unusable, decode, read_file
from ..ingest import ordered_results
from ..paths import cache_dir

__all__ = ["FeatureStore", "ImageFeatures", "image_features", "text_features", "text_key"]

log = logging.getLogger(__name__)

_CHUNK = 500  # keys per SQL query (SQLite's variable limit is 999 on old builds)


class FeatureStore:
    """Vectors by (model id, kind, key) in one SQLite file; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "features" / "features.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, kind TEXT, key TEXT, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, kind, key)) WITHOUT ROWID"
        )
        self._lock = threading.Lock()

    def keys(self, model: str, kind: str) -> set[str]:
        """Every key stored for ``model`` and ``kind``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM vectors WHERE model = ? AND kind = ?", (model, kind)
            )
            return {key for (key,) in rows}

    def get(self, model: str, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those ``keys`` that are present."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                part = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE model = ? AND kind = ? "
                    f"AND key IN ({marks})",
                    (model, kind, *part),
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, kind: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors (float32), all in one transaction."""
        rows = [
            (model, kind, key, np.ascontiguousarray(vector, dtype=np.float32).tobytes())
            for key, vector in items
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class ImageFeatures:
    """Vectors of the usable images, by kind, with rows in the order of ``usable``."""

    vectors: dict[str, np.ndarray]
    usable: np.ndarray  # indices into the paths given
    digests: list[str]
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Item:
    index: int
    digest: str
    array: np.ndarray | None  # None when the store already has its vectors


def image_features(
    paths: Sequence[str | os.PathLike[str]],
    *,
    encoder: Encoder,
    kinds: Sequence[str] = ("joint", "visual"),
    store: FeatureStore | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> ImageFeatures:
    """``encoder``'s image vectors of ``kinds`` for each path, computing only what is missing."""
    store = store or FeatureStore()
    model = encoder.model_id
    present = set.intersection(*(store.keys(model, kind) for kind in kinds))
    missing = _Missing(encoder, store, present, batch_size)
    read = functools.partial(_read, paths, encoder, missing.present, max_pixels)
    with _bar(len(paths), "img", "image features", progress) as bar:
        work = ordered_results(
            read,
            range(len(paths)),
            workers or os.cpu_count() or 1,
            batch_size,
            thread_name="picsearch-features",
        )
        for index, result in enumerate(work):
            bar.update(1)
            if isinstance(result, str):
                log.warning("skipped %s: %s", paths[index], result)
                missing.skipped["unusable images"] += 1
            else:
                missing.add(result)
        missing.flush()
    digests = [item.digest for item in missing.items]
    vectors = {kind: _gather(store, model, kind, digests) for kind in kinds}
    usable = np.array([item.index for item in missing.items], dtype=np.int64)
    return ImageFeatures(vectors=vectors, usable=usable, digests=digests, skipped=missing.skipped)


def _read(
    paths: Sequence[str | os.PathLike[str]],
    encoder: Encoder,
    present: set[str],
    max_pixels: int,
    index: int,
) -> _Item | str:
    """Image ``index`` read and preprocessed (unless its vectors are stored), or why not."""
    try:
        file = read_file(paths[index])
        if file.digest in present:
            return _Item(index, file.digest, None)
        image, _, _ = decode(file.data, short_side=encoder.decode_size, max_pixels=max_pixels)
        return _Item(index, file.digest, encoder.preprocess(image))
    except Unusable as exc:
        return str(exc)


class _Missing:
    """The usable images in order, and batches of those whose vectors are not stored yet."""

    def __init__(self, encoder: Encoder, store: FeatureStore, present: set[str], size: int):
        self.encoder, self.store, self.present, self.size = encoder, store, present, size
        self.items: list[_Item] = []
        self.batch: list[_Item] = []
        self.skipped: Counter[str] = Counter()

    def add(self, item: _Item) -> None:
        self.items.append(item)
        if item.array is not None and item.digest not in self.present:
            self.batch.append(item)
            if len(self.batch) >= self.size:
                self.flush()

    def flush(self) -> None:
        """Embed and store the batch (committed at once, so an interrupted run keeps it)."""
        if self.batch:
            _embed(self.encoder, self.batch, self.store)
            self.present.update(item.digest for item in self.batch)
            self.batch.clear()


def _bar(total: int, unit: str, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, unit=unit, desc=desc, leave=False, disable=None if enabled else True)


def _embed(encoder: Encoder, batch: list[_Item], store: FeatureStore) -> None:
    arrays = [item.array for item in batch if item.array is not None]  # all: see _Missing.add
    embedded = encoder.embed_arrays(np.stack(arrays))
    keys = [item.digest for item in batch]
    store.put(encoder.model_id, "joint", zip(keys, embedded.joint, strict=True))
    if embedded.visual is not None:
        store.put(encoder.model_id, "visual", zip(keys, embedded.visual, strict=True))


def _gather(store: FeatureStore, model: str, kind: str, keys: list[str]) -> np.ndarray:
    found = store.get(model, kind, keys)
    missing = [key for key in keys if key not in found]
    if missing:  # the encoder has no such output (e.g. no visual space)
        raise ValueError(f"{model} gives no '{kind}' vectors (missing for {len(missing)} images)")
    if not keys:
        return np.zeros((0, 0), np.float32)
    return np.stack([found[key] for key in keys])


def text_features(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    store: FeatureStore | None = None,
    chunk: int = 2048,
    progress: bool = True,
) -> np.ndarray:
    """``encoder.embed_texts`` of each text, computing each distinct text once, ever."""
    store = store or FeatureStore()
    model = encoder.model_id
    keys = [text_key(text) for text in texts]
    by_key = dict(zip(keys, texts, strict=True))
    found = store.get(model, "text", list(by_key))
    todo = [key for key in by_key if key not in found]
    with _bar(len(todo), "text", "text features", progress and bool(todo)) as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            vectors = encoder.embed_texts([by_key[key] for key in part])
            store.put(model, "text", zip(part, vectors, strict=True))
            found.update(zip(part, vectors, strict=True))
            bar.update(len(part))
    if not keys:
        return np.zeros((0, encoder.dim), np.float32)
    return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
