"""Files behind local paths or URIs, through pyarrow's file systems.

The driver lists inputs and the executors read inputs and write shards with
the same calls, so a job reads and writes wherever its cluster can: local
paths and ``file://``, ``hdfs://`` (libhdfs from the Hadoop install),
``s3://`` (``s3a://`` and ``s3n://`` are the same store), ``gs://``,
``abfs://``. Writes go to a temporary name in the target folder and are
renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ..errors import InvalidInput, require

__all__ = [
    "Entry",
    "Location",
    "locate",
    "join",
    "list_files",
    "read_bytes",
    "open_input",
    "open_file",
    "write_atomic",
    "exists",
    "size_of",
    "delete",
    "delete_tree",
    "remove_temporaries",
    "sha256_of",
    "TEMP_MARK",
]

#: Part of every temporary file name; a finished job removes what is left of them.
TEMP_MARK = ".tmp-"
_ALIASES = {"s3a": "s3", "s3n": "s3"}
_FILESYSTEMS: dict[str, tuple[Any, bool]] = {}


@dataclass(frozen=True)
class Entry:
    """A file found by list_files()."""

    uri: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Location:
    """Where a path or URI lives: its file system, the path on it, and how to name it back."""

    fs: Any
    path: str
    prefix: str  # "" for local paths; "scheme://host" for URIs

    def uri(self, path: str) -> str:
        return self.prefix + path


def _pafs() -> Any:
    return require("pyarrow.fs", package="pyarrow", extra="spark", purpose="reading shards")


def is_uri(text: str) -> bool:
    scheme = urlsplit(text).scheme
    return len(scheme) > 1  # "C:" is a drive letter, not a scheme


def locate(target: str | os.PathLike[str]) -> Location:
    """The file system of a local path or URI (one instance per file system and process)."""
    text = os.fspath(target)
    pafs = _pafs()
    if not is_uri(text) or text.startswith("file:"):
        path = urlsplit(text).path if text.startswith("file:") else text
        return Location(pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path)), "")
    parts = urlsplit(text)
    scheme = _ALIASES.get(parts.scheme, parts.scheme)
    key = f"{scheme}://{parts.netloc}"
    if key not in _FILESYSTEMS:
        try:
            fs, path = pafs.FileSystem.from_uri(key + (parts.path or "/"))
        except Exception as exc:  # pyarrow raises several kinds; all mean "cannot reach"
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise InvalidInput(f"cannot open {text}: {lines[0]}") from None
        # Object stores name the bucket in the path ("bucket/key"); others do not.
        _FILESYSTEMS[key] = (fs, bool(parts.netloc) and path.startswith(parts.netloc))
    fs, bucket_in_path = _FILESYSTEMS[key]
    if bucket_in_path:
        path, prefix = parts.netloc + parts.path.rstrip("/"), f"{parts.scheme}://"
    else:
        path, prefix = parts.path.rstrip("/") or "/", f"{parts.scheme}://{parts.netloc}"
    return Location(fs, path, prefix)


def join(base: str, *names: str) -> str:
    """``base/name``: a URI keeps its slashes, a local path is joined the local way."""
    if is_uri(base) and not base.startswith("file:"):
        return "/".join([base.rstrip("/"), *names])
    return os.path.join(locate(base).path, *names)


def list_files(target: str) -> Iterator[Entry]:
    """Every file under a folder (recursively, by name, hidden ones left out), or the file."""
    pafs = _pafs()
    where = locate(target)
    info = where.fs.get_file_info(where.path)
    if info.type == pafs.FileType.NotFound:
        raise InvalidInput(f"{target} does not exist: check the path or URI")
    if info.type == pafs.FileType.File:
        yield Entry(where.uri(info.path), int(info.size), _mtime_ns(info))
        return
    selector = pafs.FileSelector(where.path, recursive=True)
    found = [
        i
        for i in where.fs.get_file_info(selector)
        if i.type == pafs.FileType.File and not _hidden(i.path, where.path)
    ]
    for item in sorted(found, key=lambda i: i.path):
        yield Entry(where.uri(item.path), int(item.size), _mtime_ns(item))


def _hidden(path: str, root: str) -> bool:
    """Hidden files and folders, and Spark's and Hadoop's bookkeeping folders
    (``_temporary``); a file named ``_DSC0001.JPG`` (as some cameras write) is a photo."""
    *folders, name = path[len(root) :].strip("/").split("/")
    return name.startswith(".") or any(part.startswith((".", "_")) for part in folders)


def _mtime_ns(info: Any) -> int:
    return int(info.mtime_ns) if info.mtime_ns is not None else 0


def open_input(uri: str) -> BinaryIO:
    where = locate(uri)
    return where.fs.open_input_stream(where.path)


def open_file(uri: str) -> Any:
    """A seekable handle (what a Parquet reader needs to read just the footer)."""
    where = locate(uri)
    return where.fs.open_input_file(where.path)


def read_bytes(uri: str) -> bytes:
    with open_input(uri) as stream:
        return stream.read()


def exists(uri: str) -> bool:
    where = locate(uri)
    return where.fs.get_file_info(where.path).type != _pafs().FileType.NotFound


def size_of(uri: str) -> int | None:
    """The size in bytes of a file, or None when it does not exist."""
    where = locate(uri)
    info = where.fs.get_file_info(where.path)
    return None if info.type == _pafs().FileType.NotFound else int(info.size)


def delete(uri: str) -> None:
    where = locate(uri)
    if where.fs.get_file_info(where.path).type != _pafs().FileType.NotFound:
        where.fs.delete_file(where.path)


def delete_tree(uri: str) -> None:
    """Remove a folder and everything under it (nothing happens if it is not there)."""
    where = locate(uri)
    if where.fs.get_file_info(where.path).type == _pafs().FileType.Directory:
        where.fs.delete_dir(where.path)


def write_atomic(uri: str, write: Callable[[Any], None]) -> None:
    """Call ``write(stream)`` on a temporary file beside ``uri``, then rename it to ``uri``.

    A failure (or a killed process) leaves at most a temporary file, never
    a partial ``uri``.
    """
    where = locate(uri)
    folder, _, name = where.path.rpartition("/")
    where.fs.create_dir(folder, recursive=True)
    temporary = f"{folder}/.{name}{TEMP_MARK}{uuid.uuid4().hex[:12]}"
    try:
        with where.fs.open_output_stream(temporary) as stream:
            write(stream)
        where.fs.move(temporary, where.path)
    except BaseException:
        try:
            where.fs.delete_file(temporary)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass
        raise


def remove_temporaries(folder: str) -> int:
    """Delete what killed writers left in ``folder``; returns how many files went."""
    where = locate(folder)
    pafs = _pafs()
    if where.fs.get_file_info(where.path).type != pafs.FileType.Directory:
        return 0
    removed = 0
    for info in where.fs.get_file_info(pafs.FileSelector(where.path)):
        if info.type == pafs.FileType.File and TEMP_MARK in info.base_name:
            where.fs.delete_file(info.path)
            removed += 1
    return removed


def sha256_of(uri: str) -> str:
    digest = hashlib.sha256()
    with open_input(uri) as stream:
        for chunk in iter(lambda: stream.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()
