"""``picsearch info [PHOTO]``: what a library holds, or what it saw in one photo."""

from __future__ import annotations

import argparse
from typing import Any

from ..catalog.check import ensure_sound
from ..library import Library, LibraryInfo
from .output import print_json, printable
from .parser import Commands, add_command, db_option, json_option

__all__ = ["register"]

_HELP = "what a library holds, or what it saw in a photo"


def register(commands: Commands) -> None:
    info = add_command(commands, "info", _run_info, help=_HELP)
    info.add_argument(
        "photo", nargs="?", metavar="PATH", help="a photo: its concepts and text (why it matched)"
    )
    json_option(info, "a JSON object")
    db_option(info)


def _run_info(args: argparse.Namespace) -> int:
    if args.photo is not None:
        return _print_photo_concepts(args)
    with Library(args.db, create=False) as library:
        # What a library holds includes whether it is sound: a damaged part that
        # reading the counts does not touch must not go unsaid.
        ensure_sound(library.path)
        info = library.info()
    if args.json:
        print_json(info.to_dict())
    else:
        _print_info(info)
    return 0


def _print_info(info: LibraryInfo) -> None:
    dims = ", ".join(f"{space} {dim}" for space, dim in info.dims.items() if dim)
    print(f"library:  {printable(info.path)}")
    print(f"items:    {info.items}")
    print(f"model:    {info.model} ({info.model_id})")
    print(f"dims:     {dims}")
    print(f"on disk:  {info.size_bytes / 1e6:.1f} MB (schema {info.schema_version})")
    for space, index in info.indexes.items():
        recall = index["recall@10"]
        measured = "n/a" if recall is None else f"{recall:.3f}"
        print(
            f"index {space}: {index['backend']}, {index['size']} vectors, "
            f"{index['bytes_per_vector']:.0f} bytes each, recall@10 {measured} "
            f"({index['chosen_by']})"
        )


#: What indexing read of when, where and with what a photo was taken, as hits show it.
_PHOTO_KEYS = ("taken", "taken_source", "camera", "lens", "place", "gps")


def _print_photo_concepts(args: argparse.Namespace) -> int:
    with Library(args.db, create=False) as library:
        seen = library.concepts(args.photo)
        metadata = library.get(seen["id"]).metadata
    photo = {key: metadata[key] for key in _PHOTO_KEYS if key in metadata}
    if args.json:
        print_json({**seen, **photo})
        return 0
    print(f"photo:     {printable(seen['path'])} (id {seen['id']})")
    _print_taken(photo)
    print(f"detectors: {', '.join(seen['detectors']) or 'none (indexed with --concepts off)'}")
    for concept in seen["concepts"]:
        print(f'  {concept["confidence"]:.2f}  {concept["name"]:<18} "{concept["phrase"]}"')
    if seen["text"]:
        print("text:      " + printable(seen["text"].replace("\n", " / ")))
    return 0


def _print_taken(photo: dict[str, Any]) -> None:
    """When (and from what), where and with what the photo was taken, where known."""
    print(f"taken:     {photo['taken']} (from {photo['taken_source']})")
    place = photo.get("place") or {}
    names = [place[key] for key in ("city", "region", "country") if place.get(key)]
    if names:
        gps = photo.get("gps") or {}
        at = f" ({gps['latitude']:.5f}, {gps['longitude']:.5f})" if gps else ""
        print(f"place:     {printable(', '.join(names))}{at}")
    for key in ("camera", "lens"):
        if photo.get(key):
            print(f"{key + ':':<11}{printable(photo[key])}")
