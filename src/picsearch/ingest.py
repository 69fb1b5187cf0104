"""Indexing: walk folders, read and hash, decode in threads, embed in batches, commit."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .catalog import Catalog
from .concepts import ConceptBank, Detections
from .concepts.bank import blend_weight_for
from .encoders import Encoder
from .errors import InvalidInput
from .images import IMAGE_EXTENSIONS, Unusable, decode, read_file, shrink

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["IndexSummary", "Skip", "index_paths", "ordered_results"]

log = logging.getLogger("picsearch")


@dataclass(frozen=True)
class Skip:
    """A file that was not indexed, and why."""

    path: str
    reason: str


@dataclass
class IndexSummary:
    """What one ``index`` run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    reused: int = 0  # renamed or copied files recognised by content: not re-embedded
    skipped: list[Skip] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def embedded(self) -> int:
        return self.added + self.updated - self.reused

    def __str__(self) -> str:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        return (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, "
            f"unchanged {self.unchanged}, skipped {len(self.skipped)} "
            f"({self.reused} recognised by content) in {self.seconds:.1f} s "
            f"({rate:.1f} images/s embedded)"
        )


@dataclass(frozen=True)
class _Found:
    path: str
    path_bytes: bytes
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Prepared:
    found: _Found
    digest: str
    width: int
    height: int
    array: np.ndarray
    concepts: Detections | None = None


@dataclass(frozen=True)
class _Same:
    """The file's bytes are already in the catalog under ``item_id``."""

    found: _Found
    item_id: int


def index_paths(
    catalog: Catalog,
    encoder: Encoder,
    roots: Iterable[str | os.PathLike[str]],
    *,
    max_pixels: int,
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = False,
    concepts: ConceptBank | None = None,
) -> IndexSummary:
    """Bring the catalog up to date with the image files under ``roots``.

    ``concepts`` runs its detectors on every photo embedded, and on unchanged
    photos that its detectors have not looked at yet.
    """
    root_paths = _check_roots(roots)
    _warm_up(encoder, concepts)  # a first-use model export is not part of the indexing speed
    started = time.perf_counter()
    summary = IndexSummary()
    known = catalog.file_states()
    by_hash = {digest: item_id for item_id, _, _, digest in known.values()}
    refresh = _unseen_by(concepts, catalog, known)
    todo: list[_Found] = []
    seen: set[bytes] = set()
    for entry in _walk(root_paths):
        if isinstance(entry, Skip):
            _skip(summary, entry)
            continue
        seen.add(entry.path_bytes)
        state = known.get(entry.path_bytes)
        same_file = state and state[1:3] == (entry.size, entry.mtime_ns)
        if same_file and entry.path_bytes not in refresh:
            summary.unchanged += 1
        else:
            todo.append(entry)

    def prepare(found: _Found) -> _Prepared | _Same | Skip:
        hashes = {} if found.path_bytes in refresh else by_hash
        return _prepare(found, encoder, hashes, max_pixels, concepts)

    writer = _Writer(catalog, encoder, known, summary, batch_size, concepts)
    # disable=None: tqdm shows the bar only when stderr is a terminal.
    bar = tqdm(
        total=len(todo),
        unit="img",
        disable=None if progress else True,
        desc="indexing",
        leave=False,
    )
    with bar, logging_redirect_tqdm():
        for result in ordered_results(prepare, todo, workers or os.cpu_count() or 1, batch_size):
            if isinstance(result, Skip):
                _skip(summary, result)
            else:
                writer.take(result)
            bar.update(1)
        writer.flush()
    summary.removed = catalog.remove(_gone(catalog, root_paths, seen))
    summary.seconds = time.perf_counter() - started
    return summary


def _warm_up(encoder: Encoder, concepts: ConceptBank | None) -> None:
    """Load (or on first use, export) the image model before the clock starts."""
    prepare = getattr(encoder, "prepare_images", None)
    if prepare is not None:
        prepare()
    if concepts is not None:
        concepts.prepare()


def _unseen_by(
    concepts: ConceptBank | None, catalog: Catalog, known: dict[bytes, tuple[int, int, int, str]]
) -> set[bytes]:
    """Paths of cataloged photos that some of the bank's detectors have not looked at."""
    if concepts is None or not known:
        return set()
    wanted = frozenset(concepts.prepare())
    seen = catalog.concepts.detectors_by_item()
    nothing: frozenset[str] = frozenset()
    return {path for path, state in known.items() if not wanted <= seen.get(state[0], nothing)}


def _check_roots(roots: Iterable[str | os.PathLike[str]]) -> list[str]:
    paths = [os.path.abspath(os.path.expanduser(os.fspath(r))) for r in roots]
    if not paths:
        raise InvalidInput("nothing to index: name at least one folder")
    for path in paths:
        if not os.path.exists(path):
            raise InvalidInput(f"{path} does not exist: check the folder name")
    return paths


def _skip(summary: IndexSummary, skip: Skip) -> None:
    summary.skipped.append(skip)
    log.warning("skipped %s: %s", skip.path, skip.reason)


def _walk(roots: list[str]) -> Iterator[_Found | Skip]:
    """Image files under the roots, following symlinks, never looping."""
    visited: set[tuple[int, int]] = set()
    for root in roots:
        if os.path.isfile(root):
            yield _stat(root)
            continue
        for folder, dirs, files in os.walk(root, followlinks=True, onerror=None):
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in visited:
                dirs[:] = []
                yield Skip(folder, "symlink loop or folder seen already: not followed")
                continue
            visited.add((info.st_dev, info.st_ino))
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    yield _stat(os.path.join(folder, name))


def _stat(path: str) -> _Found | Skip:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return Skip(path, "broken symlink: its target does not exist")
    except OSError as exc:
        return Skip(path, f"cannot be read ({exc.strerror or exc})")
    if not stat.S_ISREG(info.st_mode):
        return Skip(path, "not a regular file")
    return _Found(path, os.fsencode(path), info.st_size, info.st_mtime_ns)


def _prepare(
    found: _Found,
    encoder: Encoder,
    by_hash: dict[str, int],
    max_pixels: int,
    concepts: ConceptBank | None = None,
) -> _Prepared | _Same | Skip:
    """Runs in a worker thread: read, hash, and unless the content is known, decode
    (and run the concept detectors on the decoded photo)."""
    try:
        file = read_file(found.path)
        if file.digest in by_hash:
            return _Same(found, by_hash[file.digest])
        side = max(encoder.decode_size, concepts.decode_side if concepts else 0)
        image, width, height = decode(file.data, short_side=side, max_pixels=max_pixels)
        detections = concepts.detect(image, label=found.path) if concepts else None
        array = encoder.preprocess(shrink(image, encoder.decode_size))
    except Unusable as exc:
        return Skip(found.path, str(exc))
    return _Prepared(found, file.digest, width, height, array, detections)


def ordered_results(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    batch_size: int,
    *,
    thread_name: str = "picsearch-read",
) -> Iterator[R]:
    """Results of ``work`` in order, computed ahead by a thread pool, with bounded memory."""
    window = max(2 * batch_size, 4 * workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _Writer:
    """Embeds prepared images in batches and commits each batch in one transaction."""

    def __init__(
        self,
        catalog: Catalog,
        encoder: Encoder,
        known: dict[bytes, tuple[int, int, int, str]],
        summary: IndexSummary,
        batch_size: int,
        concepts: ConceptBank | None = None,
    ) -> None:
        self.catalog, self.encoder, self.known = catalog, encoder, known
        self.summary, self.batch_size = summary, batch_size
        self.concepts, self.blend_weight = concepts, blend_weight_for(encoder)
        self.batch: list[_Prepared] = []

    def take(self, result: _Prepared | _Same) -> None:
        if isinstance(result, _Same):
            self._same(result)
            return
        self.batch.append(result)
        if len(self.batch) >= self.batch_size:
            self.flush()

    def _same(self, same: _Same) -> None:
        found = same.found
        previous = self.known.get(found.path_bytes)
        if previous and previous[0] == same.item_id:
            # Same file, same bytes, new timestamp: nothing to embed.
            self.catalog.touch(same.item_id, size=found.size, mtime_ns=found.mtime_ns)
            self.summary.unchanged += 1
            return
        with self.catalog.transaction():
            self.catalog.copy_from(
                same.item_id,
                path_bytes=found.path_bytes,
                size=found.size,
                mtime_ns=found.mtime_ns,
            )
        self.summary.reused += 1
        self._count(found)

    def flush(self) -> None:
        if not self.batch:
            return
        embeddings = self.encoder.embed_arrays(np.stack([p.array for p in self.batch]))
        joint = embeddings.joint
        if self.concepts is not None:
            found = [p.concepts for p in self.batch]
            joint = self.concepts.blend(joint, found, self.encoder.embed_texts, self.blend_weight)
        with self.catalog.transaction():
            for i, prepared in enumerate(self.batch):
                found = prepared.found
                self.catalog.upsert(
                    path_bytes=found.path_bytes,
                    size=found.size,
                    mtime_ns=found.mtime_ns,
                    digest=prepared.digest,
                    width=prepared.width,
                    height=prepared.height,
                    joint=joint[i],
                    visual=None if embeddings.visual is None else embeddings.visual[i],
                )
                item_id = self.catalog.concepts.item_id(found.path_bytes)
                if item_id is not None:
                    self.catalog.concepts.replace(item_id, prepared.concepts)
        for prepared in self.batch:
            self._count(prepared.found)
        self.batch = []

    def _count(self, found: _Found) -> None:
        if found.path_bytes in self.known:
            self.summary.updated += 1
        else:
            self.summary.added += 1


def _gone(catalog: Catalog, roots: list[str], seen: set[bytes]) -> list[int]:
    """Items under the indexed roots whose files were not found this time."""
    prefixes = [os.fsencode(r) for r in roots]
    sep = os.fsencode(os.sep)
    gone = []
    for item_id, path_bytes in catalog.iter_paths():
        if path_bytes in seen:
            continue
        if any(path_bytes == p or path_bytes.startswith(p.rstrip(sep) + sep) for p in prefixes):
            gone.append(item_id)
    return gone
