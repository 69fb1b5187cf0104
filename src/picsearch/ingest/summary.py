"""What an ``index`` run reports: its counts, the files it skipped and why, and the
interruption that keeps what was committed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = ["Skip", "IndexSummary", "IndexInterrupted", "record_skip"]

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
    metadata_dropped: int = 0  # broken or implausible EXIF fields left out (photos kept)
    skipped: list[Skip] = field(default_factory=list)
    seconds: float = 0.0
    #: Files of types picsearch does not read, by extension (".mov": 120).
    ignored: dict[str, int] = field(default_factory=dict)

    @property
    def embedded(self) -> int:
        return self.added + self.updated - self.reused

    def __str__(self) -> str:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        return (
            (
                f"added {self.added}, updated {self.updated}, removed {self.removed}, "
                f"unchanged {self.unchanged}, skipped {len(self.skipped)} "
                f"({self.reused} recognised by content) in {self.seconds:.1f} s "
                f"({rate:.1f} images/s embedded)"
            )
            + self.ignored_text()
            + self.dropped_text()
        )

    def dropped_text(self) -> str:
        """ "; 2 broken metadata fields left out"; empty when none were."""
        if not self.metadata_dropped:
            return ""
        return f"; {self.metadata_dropped} broken metadata fields left out (photos kept)"

    def ignored_text(self) -> str:
        """ "; ignored: 120 .mov, 4 .xmp", most common first; empty when nothing was."""
        if not self.ignored:
            return ""
        counts = sorted(self.ignored.items(), key=lambda item: (-item[1], item[0]))
        return "; ignored: " + ", ".join(f"{count} {extension}" for extension, count in counts)


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


def record_skip(summary: IndexSummary, skip: Skip) -> None:
    """Count a skipped file, and say why in the log."""
    summary.skipped.append(skip)
    log.warning("skipped %s: %s", skip.path, skip.reason)
