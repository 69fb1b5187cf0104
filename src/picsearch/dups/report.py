"""A self-contained HTML report of near-duplicate groups: thumbnails side by side, keeper marked.

One file with no external resources: thumbnails are embedded as base64 JPEG data
URIs, the style sheet is inline, and every path or text is HTML-escaped. It opens
in any browser, offline, and can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from ..display import path_text
from ..images import DEFAULT_MAX_PIXELS, Unusable, load_query_image
from .groups import Group, Member

__all__ = ["write_html_report", "render_html_report", "thumbnail_data_uri", "human_size"]

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 220

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; }
.summary { color: #555; margin: 0 0 24px; }
section.group { background: #fff; border: 1px solid #ddd; border-radius: 8px;
  padding: 12px 16px; margin: 0 0 20px; }
section.group h2 { font-size: 16px; margin: 0 0 10px; }
.members { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure.member { margin: 0; width: 236px; border: 2px solid #ddd; border-radius: 6px;
  padding: 6px; background: #fff; }
figure.member.keeper { border-color: #2e7d32; background: #f1f8f1; }
figure.member img { display: block; margin: 0 auto; max-width: 220px; max-height: 220px; }
figcaption { font-size: 12px; margin-top: 6px; word-break: break-all; }
.badge { display: inline-block; font-weight: 600; font-size: 11px; padding: 1px 6px;
  border-radius: 8px; background: #eee; margin-right: 4px; }
.keeper .badge { background: #2e7d32; color: #fff; }
table.pairs { border-collapse: collapse; margin-top: 12px; font-size: 12px; }
table.pairs caption { text-align: left; white-space: nowrap; color: #555; }
table.pairs td, table.pairs th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
"""


def write_html_report(
    groups: Sequence[Group],
    path: str | os.PathLike[str],
    *,
    title: str = "Near-duplicate photos",
    threshold: float | None = None,
) -> Path:
    """Write the report to ``path`` (parent folders are created); returns the path."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html_report(groups, title=title, threshold=threshold), "utf-8")
    return target


def render_html_report(
    groups: Sequence[Group], *, title: str = "Near-duplicate photos", threshold: float | None = None
) -> str:
    """The report as one HTML string."""
    extra = sum(len(g.members) - 1 for g in groups)
    reclaim = sum(m.size for g in groups for m in g.members if m.id != g.keeper)
    summary = f"{len(groups)} groups, {extra} photos besides the keepers ({human_size(reclaim)})"
    if threshold is not None:
        summary += f", cosine similarity at least {threshold:g}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="summary">{html.escape(summary)}. The keeper (green) has the largest '
        "resolution, then the largest file, then the oldest time.</p>",
    ]
    parts += [_group_html(number, group) for number, group in enumerate(groups, 1)]
    if not groups:
        parts.append("<p>No near-duplicates found.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _group_html(number: int, group: Group) -> str:
    to_keeper = {
        (b if a == group.keeper else a): score
        for a, b, score in group.pairs
        if group.keeper in (a, b)
    }
    figures = [
        _member_html(i, m, m.id == group.keeper, to_keeper.get(m.id))
        for i, m in enumerate(group.members, 1)
    ]
    return (
        f'<section class="group" id="group-{number}">'
        f"<h2>Group {number}: {len(group.members)} photos</h2>"
        f'<div class="members">{"".join(figures)}</div>'
        f"{_pairs_html(group)}</section>"
    )


def _member_html(number: int, member: Member, keeper: bool, score: float | None) -> str:
    badge = "keep" if keeper else (f"{score:.3f}" if score is not None else "")
    when = dt.datetime.fromtimestamp(member.mtime).strftime("%Y-%m-%d %H:%M")
    path = html.escape(path_text(member.path))
    details = html.escape(f"{member.width}×{member.height} · {human_size(member.size)}")
    return (
        f'<figure class="member{" keeper" if keeper else ""}" data-id="{member.id}">'
        f'<img src="{thumbnail_data_uri(member.path)}" alt="{path}" title="{path}">'
        f'<figcaption>{number}. <span class="badge">{html.escape(badge)}</span>{details}'
        f"<br>{html.escape(when)}<br>{path}</figcaption></figure>"
    )


def _pairs_html(group: Group) -> str:
    """The pairwise cosine similarities, as a small triangle table when every pair is listed."""
    scores = {frozenset((a, b)): s for a, b, s in group.pairs}
    members = group.members
    if len(members) < 3 or len(scores) != len(members) * (len(members) - 1) // 2:
        return ""  # the figures show each member's similarity to the keeper
    head = "".join(f"<th>{i}</th>" for i in range(1, len(members) + 1))
    rows = []
    for i, row_member in enumerate(members, 1):
        cells = "".join(
            f"<td>{scores[frozenset((row_member.id, other.id))]:.3f}</td>" if j < i else "<td></td>"
            for j, other in enumerate(members, 1)
        )
        rows.append(f"<tr><th>{i}</th>{cells}</tr>")
    return (
        '<table class="pairs"><caption>cosine similarity between members (numbered as '
        f"above)</caption><tr><th></th>{head}</tr>{''.join(rows)}</table>"
    )


def thumbnail_data_uri(path: str | os.PathLike[str]) -> str:
    """A JPEG thumbnail of the image at ``path`` as a data URI; a grey card if unreadable."""
    try:
        image = load_query_image(
            path, short_side=THUMBNAIL_SIZE, max_pixels=DEFAULT_MAX_PIXELS
        ).copy()
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    except (Unusable, OSError):
        image = _missing_card()
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _missing_card() -> Image.Image:
    card = Image.new("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE * 3 // 4), (220, 220, 220))
    ImageDraw.Draw(card).text((12, 12), "file missing or unreadable", fill=(90, 90, 90))
    return card


def human_size(size: int) -> str:
    """A byte count for people: 1.2 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
