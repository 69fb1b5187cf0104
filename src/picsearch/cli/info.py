"""``picsearch info [PHOTO]``: what a library holds, or what it saw in one photo."""

from __future__ import annotations

import argparse

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


def _print_photo_concepts(args: argparse.Namespace) -> int:
    with Library(args.db, create=False) as library:
        seen = library.concepts(args.photo)
    if args.json:
        print_json(seen)
        return 0
    print(f"photo:     {printable(seen['path'])} (id {seen['id']})")
    print(f"detectors: {', '.join(seen['detectors']) or 'none (indexed with --concepts off)'}")
    for concept in seen["concepts"]:
        print(f'  {concept["confidence"]:.2f}  {concept["name"]:<18} "{concept["phrase"]}"')
    if seen["text"]:
        print("text:      " + printable(seen["text"].replace("\n", " / ")))
    return 0
