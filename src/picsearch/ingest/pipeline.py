"""One ``index`` run: walk the roots, sort what changed, read ahead, embed in batches
and commit, then remove what is verifiably gone."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..catalog import Catalog
from ..concepts import ConceptBank
from ..encoders import Encoder, PreparesImages
from .links import record_links
from .read import Prepared, Same, ordered_results, prepare
from .summary import IndexInterrupted, IndexSummary, Skip, record_skip
from .walk import Catalogued, Found, Unknown, check_roots, gone, walk
from .writer import Writer

T = TypeVar("T")

__all__ = ["index_paths"]


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
        run.absorbed = record_links(catalog, run.links)
        run.remove_gone(root_paths)
    except KeyboardInterrupt:
        raise IndexInterrupted(run.finish()) from None
    return run.finish()


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
        self.catalogued = Catalogued(self.known)
        self.seen: set[bytes] = set()
        self.kept: set[bytes] = set()  # paths whose items stay, at or under them
        self.todo: list[Found] = []
        self.refresh: set[bytes] = set()
        self.links: dict[bytes, tuple[str, ...]] = {}  # photos with their RAW or movie
        self.absorbed: set[bytes] = set()  # linked files that were photos of their own

    def scan(self, roots: list[str]) -> None:
        """Walk the roots: what is unchanged is counted, what needs work goes to ``todo``."""
        self.refresh = self._unseen_by_concepts()
        for entry in walk(roots, self.summary.ignored):
            if isinstance(entry, Skip):
                record_skip(self.summary, entry)
            elif isinstance(entry, Unknown):
                self._keep(entry)
            else:
                self._sort(entry)

    def _sort(self, found: Found) -> None:
        self.seen.add(found.path_bytes)
        if found.linked:
            self.links[found.path_bytes] = found.linked
        state = self.known.get(found.path_bytes)
        same_file = state and state[1:3] == (found.size, found.mtime_ns)
        if same_file and found.path_bytes not in self.refresh:
            self.summary.unchanged += 1
        else:
            self.todo.append(found)

    def _keep(self, unknown: Unknown) -> None:
        path_bytes = os.fsencode(unknown.path)
        self.kept.add(path_bytes)
        count = self.catalogued.under(path_bytes)
        if count == 0 and unknown.quiet_when_empty:
            return
        reason = unknown.reason
        if count:
            reason += ": its photo is kept" if count == 1 else f": its {count:,} photos are kept"
        record_skip(self.summary, Skip(unknown.path, reason))

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

        def prepare_one(found: Found) -> Prepared | Same | Skip:
            hashes = {} if found.path_bytes in refresh else by_hash
            return prepare(found, self.encoder, hashes, options.max_pixels, self.concepts)

        writer = Writer(
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
        results = ordered_results(prepare_one, self.todo, options.workers, options.batch_size)
        try:
            with bar, logging_redirect_tqdm():
                for result in results:
                    if isinstance(result, Skip):
                        record_skip(self.summary, result)
                    else:
                        writer.take(result)
                    bar.update(1)
                writer.flush()
        finally:
            results.close()  # on Ctrl-C: drop the queued reads now, not at garbage collection

    def _warm_up(self) -> None:
        """Load (or on first use, export) the image model and the detectors."""
        if isinstance(self.encoder, PreparesImages):
            self.encoder.prepare_images()
        if self.concepts is not None:
            self.concepts.prepare()

    def _timed(self, load: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return load()
        finally:
            self.loading += time.perf_counter() - started

    def remove_gone(self, roots: list[str]) -> None:
        lost = gone(self.catalog, roots, self.seen, self.kept, self.absorbed)
        with self.catalog.transaction():  # all or none, even if interrupted
            self.summary.removed = self.catalog.remove(lost)

    def finish(self) -> IndexSummary:
        self.summary.seconds = time.perf_counter() - self.started - self.loading
        return self.summary


def _unseen_by(
    detectors: Iterable[str], catalog: Catalog, known: dict[bytes, tuple[int, int, int, str]]
) -> set[bytes]:
    """Paths of cataloged photos that some of these detectors have not looked at."""
    wanted = frozenset(detectors)
    seen = catalog.concepts.detectors_by_item()
    nothing: frozenset[str] = frozenset()
    return {path for path, state in known.items() if not wanted <= seen.get(state[0], nothing)}
