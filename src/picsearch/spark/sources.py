"""What to embed: folders of images and webdataset tar shards, split into work units.

A *unit* is one tar shard, or a run of up to ``files_per_unit`` image files of
a folder. Each unit becomes one Parquet shard, named after its position in
the sorted list, so a re-run finds the shards that are already written.

In a folder, a RAW beside a JPEG of the same name and a Live Photo's movie beside
its HEIC are one photo, as ``picsearch index`` finds them: the picture is embedded
and the other file listed in its metadata (``"linked"``). Files of types picsearch
does not read are counted by extension.

Tar shards follow the webdataset layout: the members ``key.jpg``,
``key.txt`` (a caption) and ``key.json`` (metadata) make one sample. An
item's source URI is the file's path or URI, or ``SHARD#MEMBER`` for a
member of a tar shard. Item ids are ``unit << 20 | position in the unit``:
the same inputs always give the same ids, whichever engine ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ..images import IMAGE_EXTENSIONS
from ..ingest.links import LINKED
from ..ingest.walk import pair_up
from . import storage

__all__ = ["Unit", "Item", "list_units", "iter_items", "item_id", "MEMBER_BITS", "TAR_SUFFIXES"]

#: Bits of an item id that number the items of one unit (a unit holds at most 2**20).
MEMBER_BITS = 20
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_TOO_MANY = f"more than {1 << MEMBER_BITS} samples: the rest of the shard is left out"
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def item_id(unit: int, position: int) -> int:
    return (unit << MEMBER_BITS) | position


@dataclass(frozen=True)
class Unit:
    """One unit of work: a tar shard, or a list of image files. ``members`` holds
    ``(uri, size, mtime_ns)`` of each file; ``links`` the files that are one photo
    with a member (its RAW, its Live Photo movie), by the member's uri."""

    index: int
    kind: str  # "tar" | "files"
    members: tuple[tuple[str, int, int], ...]
    links: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}.parquet"

    @property
    def key(self) -> str:
        """Identifies the inputs: a shard made from other inputs is not reused."""
        inputs: list[Any] = [self.kind, [m[:2] for m in self.members]]
        if self.links:  # a photo that gained or lost its RAW is written again
            inputs.append(self.links)
        text = json.dumps(inputs)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def source(self) -> str:
        first = self.members[0][0]
        return first if self.kind == "tar" else f"{first} (+{len(self.members) - 1} files)"

    def to_json(self) -> str:
        fields = {"index": self.index, "kind": self.kind, "members": self.members}
        return json.dumps({**fields, "links": self.links})

    @classmethod
    def from_json(cls, text: str) -> Unit:
        data = json.loads(text)
        members = tuple((str(u), int(s), int(m)) for u, s, m in data["members"])
        links = tuple((str(uri), tuple(map(str, others))) for uri, others in data["links"])
        return cls(int(data["index"]), str(data["kind"]), members, links)


@dataclass(frozen=True)
class Item:
    """One image of a unit: its bytes, or the reason it cannot be used."""

    position: int
    uri: str
    data: bytes | None
    size: int
    mtime_ns: int
    caption: str | None = None
    metadata: dict[str, Any] | None = None
    problem: str | None = None  # set when the item is skipped


def expand(source: str) -> list[str]:
    """``shard-{0000..0099}.tar`` names 100 shards (webdataset's brace ranges)."""
    match = _RANGE.search(source)
    if not match:
        return [source]
    low, high = match.group(1), match.group(2)
    width = len(low)
    head, tail = source[: match.start()], source[match.end() :]
    return [
        name
        for number in range(int(low), int(high) + 1)
        for name in expand(f"{head}{number:0{width}d}{tail}")
    ]


def list_units(
    sources: Iterable[str], *, files_per_unit: int = 1000, ignored: dict[str, int] | None = None
) -> list[Unit]:
    """The work units of the sources, in a stable order (the order given, then by name).

    Files of types picsearch does not read are counted in ``ignored`` by extension.
    """
    if files_per_unit < 1 or files_per_unit > 1 << MEMBER_BITS:
        raise InvalidInput(f"files_per_unit must be between 1 and {1 << MEMBER_BITS}")
    names = [name for source in sources for name in expand(str(source))]
    if not names:
        raise InvalidInput("nothing to embed: name at least one folder or tar shard")
    counts = {} if ignored is None else ignored
    units: list[Unit] = []
    seen: set[str] = set()  # a file named twice (a folder and a shard in it) counts once
    for name in names:
        entries = [entry for entry in storage.list_files(name) if entry.uri not in seen]
        seen.update(entry.uri for entry in entries)
        tars = [_member(e) for e in entries if e.uri.lower().endswith(TAR_SUFFIXES)]
        images, links = _photos(
            [e for e in entries if not e.uri.lower().endswith(TAR_SUFFIXES)], counts
        )
        for tar in tars:
            units.append(Unit(len(units), "tar", (tar,)))
        for start in range(0, len(images), files_per_unit):
            chunk = tuple(images[start : start + files_per_unit])
            linked = tuple((m[0], links[m[0]]) for m in chunk if m[0] in links)
            units.append(Unit(len(units), "files", chunk, linked))
    return units


def _member(entry: storage.Entry) -> tuple[str, int, int]:
    return (entry.uri, entry.size, entry.mtime_ns)


def _photos(
    entries: list[storage.Entry], ignored: dict[str, int]
) -> tuple[list[tuple[str, int, int]], dict[str, tuple[str, ...]]]:
    """The image files (a RAW or movie that goes with a picture left out), the files
    linked to each picture, and the count of the others by extension."""
    by_folder: dict[str, list[str]] = {}
    for entry in entries:
        by_folder.setdefault(entry.uri.rpartition("/")[0], []).append(entry.uri)
    links = {
        picture: tuple(others)
        for uris in by_folder.values()
        for picture, others in pair_up(uris).items()
    }
    absorbed = {uri for others in links.values() for uri in others}
    images = []
    for entry in entries:
        extension = os.path.splitext(entry.uri)[1].lower()
        if entry.uri in absorbed:
            continue
        if extension in IMAGE_EXTENSIONS:
            images.append(_member(entry))
        else:
            key = extension or "(no extension)"
            ignored[key] = ignored.get(key, 0) + 1
    return images, links


def iter_items(unit: Unit) -> Iterator[Item]:
    """The unit's images in order; unusable ones carry ``problem`` instead of bytes."""
    if unit.kind == "tar":
        yield from _tar_items(unit.members[0][0])
        return
    links = dict(unit.links)
    for position, (uri, size, mtime_ns) in enumerate(unit.members):
        metadata = {LINKED: list(links[uri])} if uri in links else None
        try:
            data = storage.read_bytes(uri)
        except FileNotFoundError:
            yield Item(position, uri, None, size, mtime_ns, problem="missing (removed meanwhile)")
            continue
        except OSError as exc:
            yield Item(position, uri, None, size, mtime_ns, problem=f"unreadable: {exc}")
            continue
        yield Item(
            position, uri, data, len(data), mtime_ns, metadata=metadata, problem=_emptiness(data)
        )


def _emptiness(data: bytes) -> str | None:
    return "empty file (0 bytes)" if not data else None


def _tar_items(uri: str) -> Iterator[Item]:
    """Samples of a webdataset shard, streamed: members with the same key are adjacent."""
    position = 0
    try:
        with storage.open_input(uri) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            key, parts, mtime = None, {}, 0
            for member in tar:
                if not member.isfile():
                    continue
                member_key, _, ext = _split_key(member.name)
                if key is not None and member_key != key:
                    yield _sample(uri, position, key, parts, mtime)
                    position += 1
                    parts = {}
                    if position >= 1 << MEMBER_BITS:
                        yield Item(position, uri, None, 0, 0, problem=_TOO_MANY)
                        return
                key, mtime = member_key, int(member.mtime * 1_000_000_000)
                handle = tar.extractfile(member)
                parts[ext] = handle.read() if handle is not None else b""
            if key is not None:
                yield _sample(uri, position, key, parts, mtime)
    except (tarfile.TarError, EOFError, OSError) as exc:
        yield Item(position, uri, None, 0, 0, problem=f"corrupt or truncated tar ({exc})")


def _split_key(name: str) -> tuple[str, str, str]:
    """``dir/0001.seg.jpg`` -> key ``dir/0001``, ext ``seg.jpg`` (webdataset's rule)."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), dot, ext.lower()


def _sample(uri: str, position: int, key: str, parts: dict[str, bytes], mtime: int) -> Item:
    image_ext = next((e for e in parts if f".{e}" in IMAGE_EXTENSIONS), None)
    caption = parts.get("txt")
    text = caption.decode("utf-8", "replace").strip() if caption is not None else None
    metadata = _json(parts.get("json"))
    if image_ext is None:
        found = ", ".join(f".{e}" for e in sorted(parts)) or "nothing"
        return Item(position, f"{uri}#{key}", None, 0, mtime, problem=f"no image (only {found})")
    data = parts[image_ext]
    return Item(
        position,
        f"{uri}#{key}.{image_ext}",
        data,
        len(data),
        mtime,
        caption=text,
        metadata=metadata,
        problem=_emptiness(data),
    )


def _json(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return {"json_unreadable": True}
    return value if isinstance(value, dict) else {"json": value}
