"""What to embed: folders of images and webdataset tar shards, split into work units.

A *unit* is one tar shard, or a run of up to ``files_per_unit`` image files of
a folder. Each unit becomes one Parquet shard, named after its position in
the sorted list, so a re-run finds the shards that are already written.

Tar shards follow the webdataset layout: the members ``key.jpg``,
``key.txt`` (a caption) and ``key.json`` (metadata) make one sample. An
item's source URI is the file's path or URI, or ``SHARD#MEMBER`` for a
member of a tar shard. Item ids are ``unit << 20 | position in the unit``:
the same inputs always give the same ids, whichever engine ran.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ..images import IMAGE_EXTENSIONS
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
    ``(uri, size, mtime_ns)`` of each file."""

    index: int
    kind: str  # "tar" | "files"
    members: tuple[tuple[str, int, int], ...]

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}.parquet"

    @property
    def key(self) -> str:
        """Identifies the inputs: a shard made from other inputs is not reused."""
        text = json.dumps([self.kind, [m[:2] for m in self.members]])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def source(self) -> str:
        first = self.members[0][0]
        return first if self.kind == "tar" else f"{first} (+{len(self.members) - 1} files)"

    def to_json(self) -> str:
        return json.dumps({"index": self.index, "kind": self.kind, "members": self.members})

    @classmethod
    def from_json(cls, text: str) -> Unit:
        data = json.loads(text)
        members = tuple((str(u), int(s), int(m)) for u, s, m in data["members"])
        return cls(int(data["index"]), str(data["kind"]), members)


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


def list_units(sources: Iterable[str], *, files_per_unit: int = 1000) -> list[Unit]:
    """The work units of the sources, in a stable order (the order given, then by name)."""
    if files_per_unit < 1 or files_per_unit > 1 << MEMBER_BITS:
        raise InvalidInput(f"files_per_unit must be between 1 and {1 << MEMBER_BITS}")
    names = [name for source in sources for name in expand(str(source))]
    if not names:
        raise InvalidInput("nothing to embed: name at least one folder or tar shard")
    units: list[Unit] = []
    seen: set[str] = set()  # a file named twice (a folder and a shard in it) counts once
    for name in names:
        tars, images = [], []
        for entry in storage.list_files(name):
            if entry.uri in seen:
                continue
            seen.add(entry.uri)
            member = (entry.uri, entry.size, entry.mtime_ns)
            lower = entry.uri.lower()
            if lower.endswith(TAR_SUFFIXES):
                tars.append(member)
            elif any(lower.endswith(ext) for ext in IMAGE_EXTENSIONS):
                images.append(member)
        for tar in tars:
            units.append(Unit(len(units), "tar", (tar,)))
        for start in range(0, len(images), files_per_unit):
            chunk = tuple(images[start : start + files_per_unit])
            units.append(Unit(len(units), "files", chunk))
    return units


def iter_items(unit: Unit) -> Iterator[Item]:
    """The unit's images in order; unusable ones carry ``problem`` instead of bytes."""
    if unit.kind == "tar":
        yield from _tar_items(unit.members[0][0])
        return
    for position, (uri, size, mtime_ns) in enumerate(unit.members):
        try:
            data = storage.read_bytes(uri)
        except FileNotFoundError:
            yield Item(position, uri, None, size, mtime_ns, problem="missing (removed meanwhile)")
            continue
        except OSError as exc:
            yield Item(position, uri, None, size, mtime_ns, problem=f"unreadable: {exc}")
            continue
        yield Item(position, uri, data, len(data), mtime_ns, problem=_emptiness(data))


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
