"""Search a TFLite searcher file with the real Task Library, in its venv (``query_job``)."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .env import ConverterEnv, find_env

__all__ = ["task_library_search"]


def task_library_search(
    path: str | os.PathLike[str],
    queries: list[str],
    *,
    kind: str,
    k: int = 5,
    index: str | os.PathLike[str] | None = None,
    env: ConverterEnv | None = None,
) -> dict[str, Any]:
    """The Task Library's answers to ``queries`` (texts, or image paths for ``kind``
    "image"): ``{"open_seconds", "seconds": [...], "results": [[{"metadata": bytes,
    "distance"}, ...], ...]}``. ``index``: an index file searched instead of the one inside."""
    env = env or find_env()
    with tempfile.TemporaryDirectory(prefix="picsearch-tflite-query-") as tmp:
        job = Path(tmp) / "query.json"
        file = str(Path(path).resolve())
        spec = {"file": file, "kind": kind, "queries": queries, "k": k}
        if index is not None:
            spec["index"] = str(Path(index).resolve())
        job.write_text(json.dumps(spec))
        answer = json.loads(
            env.run("metadata", "query_job", str(job), doing=f"searching {Path(path).name}")
        )
    for neighbours in answer["results"]:
        for neighbour in neighbours:
            neighbour["metadata"] = base64.b64decode(neighbour["metadata"])
    return answer
