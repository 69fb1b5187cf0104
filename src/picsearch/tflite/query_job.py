"""Ask the real Task Library (tflite-support) a searcher file's questions; runs in the
``metadata`` venv, not in picsearch's.

Usage: python query_job.py JOB.json. The job names a ``file``, its ``kind`` ("text" or
"image"), ``queries`` (texts, or image paths), ``k`` and optionally an ``index`` file
that replaces the one inside; stdout gets one JSON object:
the open time, each query's time and its neighbours (base64 metadata, distance).
This script imports nothing from picsearch.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tflite_support.task import core, processor, text, vision


def open_searcher(kind: str, path: str, k: int, index: str | None) -> Any:
    base = core.BaseOptions(file_name=path)
    search = processor.SearchOptions(max_results=k, index_file_name=index)
    if kind == "text":
        options = text.TextSearcherOptions(base_options=base, search_options=search)
        return text.TextSearcher.create_from_options(options)
    image_options = vision.ImageSearcherOptions(base_options=base, search_options=search)
    return vision.ImageSearcher.create_from_options(image_options)


def ask(searcher: Any, kind: str, query: str) -> Any:
    if kind == "text":
        return searcher.search(query)
    # Decoded to RGB here: the Task Library refuses to convert greyscale photos itself.
    with Image.open(query) as image:
        pixels = np.asarray(image.convert("RGB"))
    return searcher.search(vision.TensorImage.create_from_array(pixels))


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    kind = job["kind"]
    started = time.perf_counter()
    searcher = open_searcher(kind, job["file"], int(job["k"]), job.get("index"))
    opened = time.perf_counter() - started
    answers, seconds = [], []
    for query in job["queries"]:
        started = time.perf_counter()
        result = ask(searcher, kind, query)
        seconds.append(time.perf_counter() - started)
        answers.append(
            [
                {
                    "metadata": base64.b64encode(bytes(n.metadata)).decode("ascii"),
                    "distance": float(n.distance),
                }
                for n in result.nearest_neighbors
            ]
        )
    json.dump({"open_seconds": opened, "seconds": seconds, "results": answers}, sys.stdout)


if __name__ == "__main__":
    main()
