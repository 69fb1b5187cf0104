"""Captioned image sets: COCO captions JSON, or CSV / JSONL of ``image_path,caption``.

Bad entries are skipped and counted, never fatal: a missing image file, a
caption for an image id the file does not list, an empty caption. A file of
the wrong shape (no ``annotations``, an annotation without ``caption``, a CSV
without an ``image_path`` column...) raises InvalidInput naming the field.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput

__all__ = ["CaptionSet", "read_captions", "COCO_SHAPE", "TABLE_SHAPE"]

COCO_SHAPE = (
    "a COCO captions file is an object with 'images' (each with 'id' and 'file_name') "
    "and 'annotations' (each with 'image_id' and 'caption')"
)
TABLE_SHAPE = "a CSV or JSONL captions file has the fields 'image_path' and 'caption'"


@dataclass
class CaptionSet:
    """Captions and the images they describe.

    ``caption_image[i]`` is the index in ``images`` of caption ``i``'s image.
    ``labels`` (optional, one per image) name a class, for class-query metrics.
    ``skipped`` counts what was left out, by reason.
    """

    images: list[Path]
    captions: list[str]
    caption_image: np.ndarray
    labels: list[str | None] | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    source: str = ""

    def __len__(self) -> int:
        return len(self.captions)

    def select_images(self, keep: Iterable[int]) -> CaptionSet:
        """The set restricted to the images ``keep`` (indices), with their captions."""
        keep = np.asarray(sorted(set(int(i) for i in keep)), dtype=np.int64)
        new_index = np.full(len(self.images), -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        mapped = new_index[self.caption_image]
        rows = np.flatnonzero(mapped >= 0)
        return CaptionSet(
            images=[self.images[i] for i in keep],
            captions=[self.captions[i] for i in rows],
            caption_image=mapped[rows],
            labels=None if self.labels is None else [self.labels[i] for i in keep],
            skipped=Counter(self.skipped),
            source=self.source,
        )

    def first_captions(self) -> np.ndarray:
        """Index of each image's first caption (-1 for an image without one)."""
        first = np.full(len(self.images), -1, dtype=np.int64)
        for caption in range(len(self.captions) - 1, -1, -1):
            first[self.caption_image[caption]] = caption
        return first

    def describe_skipped(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"


def read_captions(
    path: str | os.PathLike[str], *, images: str | os.PathLike[str] | None = None
) -> CaptionSet:
    """Read a captions file; image paths are relative to ``images`` (default: its folder)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidInput(f"{path}: no such captions file")
    root = (Path(images).expanduser() if images is not None else path.parent).absolute()
    if not root.is_dir():
        raise InvalidInput(f"{root}: no such image folder (--images)")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif suffix in (".csv", ".tsv"):
        rows = _csv_rows(path, delimiter="\t" if suffix == ".tsv" else ",")
    else:
        rows = _coco_rows(path)
    return _build(rows, root, str(path))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _field(entry: Any, name: str, where: str, kinds: tuple[type, ...], shape: str) -> Any:
    if not isinstance(entry, dict):
        raise InvalidInput(f"{where} is not an object; {shape}")
    if name not in entry:
        raise InvalidInput(f"{where} has no field '{name}'; {shape}")
    value = entry[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise InvalidInput(f"{where}: field '{name}' has the wrong type; {shape}")
    return value


# A row: (image key, relative image path or None for an unknown id, caption, label).
_Row = tuple[str, str | None, str, str | None]


def _coco_rows(path: Path) -> Iterator[_Row]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: the top level is not an object; {COCO_SHAPE}")
    for name in ("images", "annotations"):
        if not isinstance(data.get(name), list):
            problem = "missing" if name not in data else "not a list"
            raise InvalidInput(f"{path}: field '{name}' is {problem}; {COCO_SHAPE}")
    files: dict[str, tuple[str, str | None]] = {}
    for i, entry in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        image_id = _field(entry, "id", where, (int, str), COCO_SHAPE)
        name = _field(entry, "file_name", where, (str,), COCO_SHAPE)
        label = entry.get("label")
        files[str(image_id)] = (name, None if label is None else str(label))
    for i, entry in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        image_id = str(_field(entry, "image_id", where, (int, str), COCO_SHAPE))
        caption = _field(entry, "caption", where, (str,), COCO_SHAPE)
        file_name, label = files.get(image_id, (None, None))
        yield image_id, file_name, caption, label


def _table_row(entry: dict[str, Any], where: str) -> _Row:
    image = _field(entry, "image_path", where, (str,), TABLE_SHAPE)
    caption = _field(entry, "caption", where, (str,), TABLE_SHAPE)
    label = entry.get("label")
    return image, image, caption, (str(label) if label not in (None, "") else None)


def _jsonl_rows(path: Path) -> Iterator[_Row]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
            yield _table_row(entry, f"{path}: line {number}")


def _csv_rows(path: Path, *, delimiter: str) -> Iterator[_Row]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = reader.fieldnames or []
        for name in ("image_path", "caption"):
            if name not in columns:
                found = ", ".join(columns) or "none"
                raise InvalidInput(
                    f"{path}: no column '{name}' in the header (columns: {found}); {TABLE_SHAPE}"
                )
        for number, entry in enumerate(reader, 2):
            yield _table_row(entry, f"{path}: line {number}")


def _build(rows: Iterable[_Row], root: Path, source: str) -> CaptionSet:
    skipped: Counter[str] = Counter()
    index: dict[str, int] = {}
    images: list[Path] = []
    labels: list[str | None] = []
    missing: set[str] = set()
    captions: list[str] = []
    owners: list[int] = []
    for key, name, caption, label in rows:
        if name is None:
            skipped["captions for unknown image ids"] += 1
            continue
        caption = " ".join(caption.split())
        if not caption:
            skipped["empty captions"] += 1
            continue
        if key in missing:
            skipped["captions of missing images"] += 1
            continue
        if key not in index:
            file = root / name
            if not file.is_file():
                missing.add(key)
                skipped["missing image files"] += 1
                skipped["captions of missing images"] += 1
                continue
            index[key] = len(images)
            images.append(file)
            labels.append(label)
        captions.append(caption)
        owners.append(index[key])
    has_labels = any(label is not None for label in labels)
    return CaptionSet(
        images=images,
        captions=captions,
        caption_image=np.asarray(owners, dtype=np.int64),
        labels=labels if has_labels else None,
        skipped=skipped,
        source=source,
    )
