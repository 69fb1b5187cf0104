"""Indexing: walk folders, read and hash, decode in threads, embed in batches, commit."""

from __future__ import annotations

import bisect
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
from .images import IMAGE_EXTENSIONS, Unusable, decode, file_kind, read_file, shrink

T = TypeVar("T")
R = TypeVar("R")

__all__ = [
    "IndexInterrupted",
    "IndexSummary",
    "Skip",
    "check_roots",
    "index_paths",
    "ordered_results",
]

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


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped an ``index`` run; every batch committed before it is kept.

    ``summary`` counts what was committed. Running the same ``index`` again
    carries on where this one stopped (the kept photos are not embedded again).
    """

    def __init__(self, summary: IndexSummary) -> None:
        super().__init__("indexing interrupted")
        self.summary = summary

    @property
    def kept(self) -> int:
        """Photos written to the library by the interrupted run."""
        return self.summary.added + self.summary.updated


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
class _Unknown:
    """A path that is there but could not be looked at (a folder that cannot be listed,
    a file that cannot be stat'ed, a broken symlink): the catalog keeps every item at
    or under it, since nothing shows they are gone."""

    path: str
    reason: str
    #: Report it only when the catalog holds photos under it (e.g. any broken symlink).
    quiet_when_empty: bool = False


@dataclass(frozen=True)
class _Same:
    """The file's bytes are already in the catalog under ``item_id``."""

    found: _Found
    item_id: int


@dataclass(frozen=True)
class _Options:
    max_pixels: int
    batch_size: int
    workers: int
    progress: bool


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
    photos that its detectors have not looked at yet; the models load only when
    some file needs them. A photo is removed only when its file verifiably no
    longer exists: whatever lies under a folder that cannot be listed is kept.
    Ctrl-C raises IndexInterrupted; every batch committed before it is kept.
    """
    root_paths = check_roots(roots)
    options = _Options(max_pixels, batch_size, workers or os.cpu_count() or 1, progress)
    run = _Run(catalog, encoder, concepts, options)
    try:
        run.scan(root_paths)
        run.embed()
        run.remove_gone(root_paths)
    except KeyboardInterrupt:
        raise IndexInterrupted(run.finish()) from None
    return run.finish()


def check_roots(roots: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The roots as absolute paths, or InvalidInput naming the first that cannot be indexed.

    A root that is missing or cannot be listed is refused rather than walked:
    walking it would find nothing, and so remove every photo the library holds under it.
    """
    paths = [_absolute(root) for root in roots]
    if not paths:
        raise InvalidInput("nothing to index: name at least one folder")
    for path in paths:
        _check_root(path)
    return paths


def _absolute(root: str | os.PathLike[str]) -> str:
    path = os.fsdecode(os.fspath(root))
    if not path:
        raise InvalidInput("an empty path was given to index: name a folder ('.' for this one)")
    return os.path.abspath(os.path.expanduser(path))


def _check_root(path: str) -> None:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            with os.scandir(path):
                pass
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist: check the folder name") from None
    except OSError as exc:
        raise InvalidInput(
            f"{path} cannot be read ({_why(exc)}): check its permissions, or that its disk is "
            "mounted (the library was left as it is)"
        ) from None


def _why(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "removed or unmounted while indexing"
    return (exc.strerror or str(exc)).lower()


class _Run:
    """One ``index`` run: walk, embed what changed, remove what is verifiably gone."""

    def __init__(
        self,
        catalog: Catalog,
        encoder: Encoder,
        concepts: ConceptBank | None,
        options: _Options,
    ) -> None:
        self.catalog, self.encoder, self.concepts = catalog, encoder, concepts
        self.options = options
        self.started = time.perf_counter()
        self.loading = 0.0  # seconds spent loading models: not part of the indexing speed
        self.summary = IndexSummary()
        self.known = catalog.file_states()
        self.catalogued = _Catalogued(self.known)
        self.seen: set[bytes] = set()
        self.kept: set[bytes] = set()  # paths whose items stay, at or under them
        self.todo: list[_Found] = []
        self.refresh: set[bytes] = set()

    def scan(self, roots: list[str]) -> None:
        """Walk the roots: what is unchanged is counted, what needs work goes to ``todo``."""
        self.refresh = self._unseen_by_concepts()
        for entry in _walk(roots):
            if isinstance(entry, Skip):
                _skip(self.summary, entry)
            elif isinstance(entry, _Unknown):
                self._keep(entry)
            else:
                self._sort(entry)

    def _sort(self, found: _Found) -> None:
        self.seen.add(found.path_bytes)
        state = self.known.get(found.path_bytes)
        same_file = state and state[1:3] == (found.size, found.mtime_ns)
        if same_file and found.path_bytes not in self.refresh:
            self.summary.unchanged += 1
        else:
            self.todo.append(found)

    def _keep(self, unknown: _Unknown) -> None:
        path_bytes = os.fsencode(unknown.path)
        self.kept.add(path_bytes)
        count = self.catalogued.under(path_bytes)
        if count == 0 and unknown.quiet_when_empty:
            return
        reason = unknown.reason
        if count:
            reason += ": its photo is kept" if count == 1 else f": its {count:,} photos are kept"
        _skip(self.summary, Skip(unknown.path, reason))

    def _unseen_by_concepts(self) -> set[bytes]:
        """Paths of cataloged photos that some of the bank's detectors have not looked at.

        Asked first of the detectors that could load, which loads no model: when
        every photo has been seen by those, a run with nothing new loads none.
        """
        if self.concepts is None or not self.known:
            return set()
        unseen = _unseen_by(self.concepts.expected_detectors(), self.catalog, self.known)
        if unseen:  # some may not load after all: ask again of those that did
            unseen = _unseen_by(self._timed(self.concepts.prepare), self.catalog, self.known)
        return unseen

    def embed(self) -> None:
        """Read, decode, embed and commit everything in ``todo``, batch by batch."""
        if not self.todo:
            return
        self._timed(self._warm_up)
        options, refresh = self.options, self.refresh
        by_hash = {digest: item_id for item_id, _, _, digest in self.known.values()}

        def prepare(found: _Found) -> _Prepared | _Same | Skip:
            hashes = {} if found.path_bytes in refresh else by_hash
            return _prepare(found, self.encoder, hashes, options.max_pixels, self.concepts)

        writer = _Writer(
            self.catalog, self.encoder, self.known, self.summary, options.batch_size, self.concepts
        )
        # disable=None: tqdm shows the bar only when stderr is a terminal.
        bar = tqdm(
            total=len(self.todo),
            unit="img",
            disable=None if options.progress else True,
            desc="indexing",
            leave=False,
        )
        results = ordered_results(prepare, self.todo, options.workers, options.batch_size)
        try:
            with bar, logging_redirect_tqdm():
                for result in results:
                    if isinstance(result, Skip):
                        _skip(self.summary, result)
                    else:
                        writer.take(result)
                    bar.update(1)
                writer.flush()
        finally:
            results.close()  # on Ctrl-C: drop the queued reads now, not at garbage collection

    def _warm_up(self) -> None:
        """Load (or on first use, export) the image model and the detectors."""
        prepare = getattr(self.encoder, "prepare_images", None)
        if prepare is not None:
            prepare()
        if self.concepts is not None:
            self.concepts.prepare()

    def _timed(self, load: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return load()
        finally:
            self.loading += time.perf_counter() - started

    def remove_gone(self, roots: list[str]) -> None:
        gone = _gone(self.catalog, roots, self.seen, self.kept)
        with self.catalog.transaction():  # all or none, even if interrupted
            self.summary.removed = self.catalog.remove(gone)

    def finish(self) -> IndexSummary:
        self.summary.seconds = time.perf_counter() - self.started - self.loading
        return self.summary


class _Catalogued:
    """Counts the cataloged photos at or under a path (sorted once, when first asked)."""

    def __init__(self, known: dict[bytes, tuple[int, int, int, str]]) -> None:
        self._known = known
        self._sorted: list[bytes] | None = None

    def under(self, path_bytes: bytes) -> int:
        if self._sorted is None:
            self._sorted = sorted(self._known)
        prefix = path_bytes.rstrip(_SEP) + _SEP
        # Paths under the folder sort between "folder/" and "folder0" ("0" follows "/").
        low = bisect.bisect_left(self._sorted, prefix)
        high = bisect.bisect_left(self._sorted, prefix[:-1] + bytes([prefix[-1] + 1]))
        return (high - low) + (path_bytes in self._known)


_SEP = os.fsencode(os.sep)


def _unseen_by(
    detectors: Iterable[str], catalog: Catalog, known: dict[bytes, tuple[int, int, int, str]]
) -> set[bytes]:
    """Paths of cataloged photos that some of these detectors have not looked at."""
    wanted = frozenset(detectors)
    seen = catalog.concepts.detectors_by_item()
    nothing: frozenset[str] = frozenset()
    return {path for path, state in known.items() if not wanted <= seen.get(state[0], nothing)}


def _skip(summary: IndexSummary, skip: Skip) -> None:
    summary.skipped.append(skip)
    log.warning("skipped %s: %s", skip.path, skip.reason)


def _walk(roots: list[str]) -> Iterator[_Found | Skip | _Unknown]:
    """Image files under the roots, following symlinks, never looping; sorted, depth first."""
    visited: set[tuple[int, int]] = set()
    for root in roots:
        if os.path.isdir(root):
            yield from _walk_folder(root, visited)
        else:
            found = _stat(root)
            if found is not None:
                yield found


def _walk_folder(root: str, visited: set[tuple[int, int]]) -> Iterator[_Found | Skip | _Unknown]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in visited:
                yield Skip(folder, "symlink loop or folder seen already: not followed")
                continue
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            yield _Unknown(folder, f"folder cannot be listed ({_why(exc)})")
            continue
        visited.add((info.st_dev, info.st_ino))
        subfolders: list[str] = []
        for entry in entries:
            yield from _look_at(entry, subfolders)
        stack.extend(reversed(subfolders))


def _look_at(entry: os.DirEntry[str], subfolders: list[str]) -> Iterator[_Found | Skip | _Unknown]:
    """One entry of a listed folder: a subfolder to walk, an image file, or nothing."""
    try:
        is_folder = entry.is_dir()
        broken_link = not is_folder and entry.is_symlink() and not os.path.exists(entry.path)
    except OSError as exc:
        yield _Unknown(entry.path, f"cannot be looked at ({_why(exc)})")
        return
    if is_folder:
        if not entry.name.startswith("."):
            subfolders.append(entry.path)
    elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
        found = _stat(entry.path)
        if found is not None:
            yield found
    elif broken_link:
        # Maybe a link to a folder on a disk that is not mounted now: keep what was under it.
        yield _Unknown(entry.path, "broken symlink: its target does not exist", True)


def _stat(path: str) -> _Found | Skip | _Unknown | None:
    """What a file is; None when it is gone (removed since its folder was listed)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            return _Unknown(path, "broken symlink: its target does not exist")
        return None
    except OSError as exc:
        return _Unknown(path, f"cannot be read ({_why(exc)})")
    if stat.S_ISDIR(info.st_mode):
        return None  # a root given as a folder is walked, not stat'ed
    if not stat.S_ISREG(info.st_mode):
        # Never opened: reading a FIFO or a device would block or never end.
        return Skip(path, f"not a regular file: {file_kind(info.st_mode)}")
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
    """Results of ``work`` in order, computed ahead by a thread pool, with bounded memory.

    Closing the iterator early (or Ctrl-C while it waits) cancels the work not
    started yet and does not wait for the rest: it stops at once.
    """
    window = max(2 * batch_size, 4 * workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name)
    finished = False
    try:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    finally:
        pool.shutdown(wait=finished, cancel_futures=not finished)


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


def _gone(catalog: Catalog, roots: list[str], seen: set[bytes], kept: set[bytes]) -> list[int]:
    """Items under the indexed roots whose files verifiably no longer exist: not found
    this time, not at or under a path that could not be looked at, and not there now."""
    roots_bytes = {os.fsencode(r) for r in roots}
    gone = []
    for item_id, path_bytes in catalog.iter_paths():
        if path_bytes in seen or _at_or_under(path_bytes, kept):
            continue
        if _at_or_under(path_bytes, roots_bytes) and _no_longer_there(path_bytes):
            gone.append(item_id)
    return gone


def _no_longer_there(path_bytes: bytes) -> bool:
    """Asked of each photo about to be removed. A file that is still there (in a hidden
    folder, under a name without an image extension, both indexed as roots before, or
    made since the walk) is kept, and so is one whose folder cannot be looked at now."""
    try:
        info = os.stat(path_bytes)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return not stat.S_ISREG(info.st_mode)


def _at_or_under(path_bytes: bytes, paths: set[bytes]) -> bool:
    """Whether the path or one of its parent folders is in ``paths`` (a few look-ups)."""
    while path_bytes:
        if path_bytes in paths:
            return True
        parent = path_bytes.rsplit(_SEP, 1)[0]
        if parent == path_bytes:
            return False
        path_bytes = parent
    return _SEP in paths
