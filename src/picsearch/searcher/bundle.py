"""The one-file searcher format: a zip of JSON, ONNX, .npy and index-engine files.

Layout (every member stored uncompressed; see docs/searcher.md)::

    manifest.json            format, versions, model, dims, index, item count, checksums
    encoders/text.onnx       text → L2-normalised joint vector
    encoders/tokenizer.json  Hugging Face tokenizers file, padding and truncation set
    encoders/image.onnx      pixels → joint (and visual) vectors
    index/<space>/...        the ANN index of each space, as ``AnnIndex.save`` writes it
    items/ids.npy            int64 item ids, in the order of items/metadata.json
    items/metadata.json      one JSON object per item: path, size, user fields...

Reading never executes anything from the file: JSON, ``np.load(allow_pickle=False)``,
ONNX graphs and the engines' own index formats only, each part checked against the
manifest's SHA-256 before it is used. The manifest itself is checked field by field
(type and range, see ``manifest``) when the file is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import PicsearchError
from .manifest import FORMAT, FORMAT_VERSION, Manifest
from .rules import ManifestFieldError

__all__ = ["FORMAT", "FORMAT_VERSION", "SearcherFileError", "BundleReader", "write_bundle"]

MANIFEST = "manifest.json"
#: No honest manifest comes near this; a bigger one is a damaged or hostile file.
MAX_MANIFEST_BYTES = 1 << 20
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class SearcherFileError(PicsearchError):
    """A searcher file is truncated, corrupted, foreign or from a newer picsearch."""


def check_member_name(name: str, where: Path | None = None) -> str:
    """Refuse absolute paths, ``..`` and odd characters in a member name."""
    parts = PurePosixPath(name).parts
    if (
        not _SAFE_NAME.match(name)
        or name.startswith("/")
        or any(part in ("..", ".") for part in parts)
    ):
        prefix = f"{where}: " if where else ""
        raise SearcherFileError(f"{prefix}unsafe member name {name!r}: refusing to read it")
    return name


def write_bundle(path: Path, manifest: dict[str, Any], parts: dict[str, Path]) -> None:
    """Write ``parts`` (member name → file) and the manifest with their checksums."""
    manifest = dict(manifest, parts={})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, source in sorted(parts.items()):
            check_member_name(name)
            digest = hashlib.sha256()
            with source.open("rb") as file, archive.open(name, "w", force_zip64=True) as out:
                for chunk in iter(lambda: file.read(1 << 20), b""):  # noqa: B023
                    digest.update(chunk)
                    out.write(chunk)
            manifest["parts"][name] = {"sha256": digest.hexdigest(), "bytes": source.stat().st_size}
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


@dataclass
class BundleReader:
    """A searcher file opened for reading: the manifest checked, parts read on demand."""

    path: Path
    _archive: zipfile.ZipFile
    manifest: Manifest = field(init=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> BundleReader:
        path = Path(path).expanduser()
        try:
            archive = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise SearcherFileError(f"no searcher file at {path}") from None
        except IsADirectoryError:
            raise SearcherFileError(f"{path} is a folder, not a searcher file") from None
        except Exception as exc:  # zipfile's parser raises many kinds on damaged input
            raise SearcherFileError(
                f"{path} is not a picsearch searcher (truncated, corrupted or another kind "
                f"of file: {exc}); export it again with 'picsearch export'"
            ) from None
        try:
            for info in archive.infolist():
                check_member_name(info.filename, path)
            reader = cls(path, archive)
            reader.manifest = reader._read_manifest()
        except BaseException:
            archive.close()
            raise
        return reader

    def _read_manifest(self) -> Manifest:
        raw = self._read_raw(MANIFEST, limit=MAX_MANIFEST_BYTES)
        try:
            manifest = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise self.error(f"its manifest is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self.error("its manifest does not describe a picsearch searcher")
        version = manifest.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise SearcherFileError(
                f"{self.path} has searcher format {version}, newer than this picsearch reads "
                f"({FORMAT_VERSION}): upgrade picsearch"
            )
        try:
            checked = Manifest.from_json(manifest)
        except ManifestFieldError as exc:
            raise self.error(f"its manifest {exc}") from None
        for name in checked.parts:
            check_member_name(name, self.path)
        self._check_part_sizes(checked)
        return checked

    def _check_part_sizes(self, manifest: Manifest) -> None:
        """No part can hold more bytes than the whole file: a manifest that says so lies
        (and would let a compressed member inflate without bound)."""
        total = self.path.stat().st_size
        for name, part in manifest.parts.items():
            if part.bytes > total:
                raise self.error(
                    f"its manifest field parts.{name}.bytes is {part.bytes}, more than the "
                    f"file's {total} bytes"
                )

    def read(self, name: str) -> bytes:
        """One part's bytes, after checking its size and SHA-256 against the manifest."""
        expected = self.manifest.parts.get(name)
        if expected is None:
            raise self.error(f"its manifest lists no part {name!r}")
        data = self._read_raw(name, limit=expected.bytes)
        if len(data) != expected.bytes:
            raise self.error(f"part {name} has {len(data)} bytes, not {expected.bytes}")
        if hashlib.sha256(data).hexdigest() != expected.sha256:
            raise self.error(f"part {name} fails its checksum")
        return data

    def has(self, name: str) -> bool:
        """Whether the manifest lists this part (optional parts came with later versions)."""
        return name in self.manifest.parts

    def parts_under(self, folder: str) -> Iterator[str]:
        prefix = folder.rstrip("/") + "/"
        return (name for name in self.manifest.parts if name.startswith(prefix))

    def extract(self, folder: str, target: Path) -> Path:
        """Check and copy the parts under ``folder`` into ``target`` (for engines that read
        files); member names were checked, so nothing lands outside ``target``."""
        for name in self.parts_under(folder):
            destination = target / name[len(folder) + 1 :]
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(self.read(name))
        return target

    def _read_raw(self, name: str, *, limit: int) -> bytes:
        try:
            info = self._archive.getinfo(name)
        except KeyError:
            raise self.error(f"part {name} is missing") from None
        if info.file_size > limit:
            raise self.error(f"part {name} is {info.file_size} bytes, more than expected")
        try:
            with self._archive.open(info) as member:
                return member.read(limit + 1)
        except Exception as exc:  # zipfile's parser raises many kinds on damaged input
            raise self.error(f"part {name} cannot be read ({exc})") from None

    def error(self, what: str) -> SearcherFileError:
        """The refusal of this file: its path and what is wrong, on one line."""
        what = " ".join(what.split())  # a dependency's message may span lines
        return SearcherFileError(
            f"{self.path} is damaged or not a picsearch searcher: {what}; "
            "export it again with 'picsearch export'"
        )

    def close(self) -> None:
        self._archive.close()
