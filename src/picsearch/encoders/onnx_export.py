"""Export PyTorch modules to ONNX once, check them, and run them with ONNX Runtime.

An exported graph lives in ``cache_dir()/onnx/<model id>/<name>-<version>.onnx``.
It is written under a temporary name, checked against the PyTorch module on a
few inputs (cosine >= ``MIN_COSINE`` for every output row) and only then
renamed into place, so a half-written or unverified file is never picked up.
Next to it a small ``.json`` records the parity measured at export time.

torch is imported only by :func:`export_onnx` (through the ``build`` callable the
caller passes in); opening and running a cached graph needs onnxruntime alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PicsearchError, require
from ..paths import cache_dir
from . import graphs

__all__ = [
    "THREADS_ENV",
    "MIN_COSINE",
    "ExportError",
    "ExportSpec",
    "num_threads",
    "onnx_path",
    "open_session",
    "export_onnx",
    "cached_session",
    "row_cosines",
    "file_digest",
]

log = logging.getLogger(__name__)

#: Environment variable that sets ONNX Runtime's intra-op thread count.
THREADS_ENV = "PICSEARCH_THREADS"
#: The smallest cosine between PyTorch and ONNX Runtime outputs an export may have.
MIN_COSINE = 0.9999
#: Opset of the exported graphs: that of every graph picsearch writes.
OPSET = graphs.OPSET

_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class ExportError(PicsearchError):
    """An ONNX export failed or does not reproduce the PyTorch module."""


@dataclass
class ExportSpec:
    """What :func:`export_onnx` needs to export and check one module.

    ``parity_inputs`` are feeds (input name -> numpy array) on which the PyTorch
    module and the exported graph must agree; the first feed is also the
    example the exporter traces with unless ``example`` is given.
    """

    module: Any  # torch.nn.Module, in eval mode
    input_names: list[str]
    output_names: list[str]
    parity_inputs: list[dict[str, np.ndarray]]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    example: dict[str, np.ndarray] | None = None
    #: Extra facts recorded in the sidecar .json (weights file, versions...).
    info: dict[str, Any] = field(default_factory=dict)

    def names(self) -> dict[str, Any]:
        """The graph's input and output names and dynamic axes, as torch.onnx.export takes them."""
        return {
            "input_names": self.input_names,
            "output_names": self.output_names,
            "dynamic_axes": self.dynamic_axes,
        }


def num_threads() -> int:
    """Intra-op threads: $PICSEARCH_THREADS if set to a positive integer, else the CPU count."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads > 0:
            return threads
        log.warning("ignoring %s=%r: expected a positive integer", THREADS_ENV, value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"
    if slug != text:  # keep distinct ids distinct after cleaning
        slug += "-" + hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return slug[:120]


def onnx_path(model_id: str, name: str, version: str) -> Path:
    """Where the graph ``name`` of ``model_id`` (export recipe ``version``) is cached."""
    return cache_dir() / "onnx" / _slug(model_id) / f"{_slug(name)}-{_slug(version)}.onnx"


def file_digest(paths: Sequence[os.PathLike[str] | str], *, size: int = 6) -> str:
    """A short hex digest of files' contents (for model ids keyed by weights)."""
    digest = hashlib.blake2b(digest_size=size)
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def open_session(
    path: os.PathLike[str] | str | bytes, *, threads: int | None = None, spinning: bool = False
):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (default num_threads()).

    ``path`` may also be the serialized graph itself (bytes).

    ``spinning=False`` stops idle worker threads from busy-waiting between runs,
    so they leave the CPU to the threads that decode images meanwhile.
    """
    ort = require("onnxruntime", package="onnxruntime", extra="default", purpose="ONNX inference")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or num_threads()
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between matching rows of two arrays of the same shape (batch first)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    dot = (a * b).sum(axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = norms == 0
    return np.where(both_zero, 1.0, dot / np.maximum(norms, 1e-300))


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


def export_onnx(
    path: Path, build: Callable[[], ExportSpec], *, min_cosine: float = MIN_COSINE
) -> dict[str, Any] | None:
    """Export the module ``build()`` returns to ``path`` unless it is already there.

    Returns the parity record (a dict) of a new export, or None when the file
    already existed. Raises ExportError when the export does not reproduce the
    module; nothing is left at ``path`` then.
    """
    path = Path(path)
    with _lock_for(path):
        if path.exists():
            return None
        torch = require("torch", package="torch", extra="default", purpose="exporting to ONNX")
        log.info("exporting %s to ONNX (with a parity check; up to a minute)", path.name)
        started = time.perf_counter()
        with warnings.catch_warnings():  # tracer warnings are noise to a user
            warnings.simplefilter("ignore")
            return _export(path, build, torch, started, min_cosine)


def _export(
    path: Path, build: Callable[[], ExportSpec], torch: Any, started: float, min_cosine: float
) -> dict[str, Any]:
    spec = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.onnx")
    try:
        example = spec.example or spec.parity_inputs[0]
        args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in spec.input_names)
        with torch.no_grad():
            options = {"opset_version": OPSET, "do_constant_folding": True, "dynamo": False}
            torch.onnx.export(spec.module, args, str(tmp), **spec.names(), **options)
        record = _check_parity(spec, tmp, torch, min_cosine)
        record.update(
            seconds=round(time.perf_counter() - started, 2),
            torch=torch.__version__,
            opset=OPSET,
            **spec.info,
        )
        path.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"could not export {path.name} to ONNX: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s in %.1f s (parity %s)", path, record["seconds"], record["min_cosine"])
    return record


def _check_parity(spec: ExportSpec, onnx_file: Path, torch, min_cosine: float) -> dict[str, Any]:
    session = open_session(onnx_file)
    worst: dict[str, float] = {}
    max_abs: dict[str, float] = {}
    for feed in spec.parity_inputs:
        tensors = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in spec.input_names]
        with torch.no_grad():
            expected = spec.module(*tensors)
        if not isinstance(expected, tuple | list):
            expected = (expected,)
        got = session.run(spec.output_names, {n: feed[n] for n in spec.input_names})
        for name, want, have in zip(spec.output_names, expected, got, strict=True):
            want = want.detach().float().numpy()
            cosine = float(row_cosines(want, have).min())
            worst[name] = min(worst.get(name, 1.0), cosine)
            max_abs[name] = max(max_abs.get(name, 0.0), float(np.abs(want - have).max()))
    low = {name: value for name, value in worst.items() if not value >= min_cosine}
    if low:
        raise ExportError(
            f"ONNX export of {onnx_file.name} does not match PyTorch: "
            + ", ".join(f"{n} cosine {v:.6f}" for n, v in low.items())
            + f" (need >= {min_cosine})"
        )
    return {
        "min_cosine": min(worst.values()),
        "cosine": worst,
        "max_abs_diff": max_abs,
        "parity_batches": len(spec.parity_inputs),
    }


def cached_session(
    path: Path, build: Callable[[], ExportSpec], *, threads: int | None = None
) -> tuple[Any, dict[str, Any] | None]:
    """Open the cached graph at ``path``, exporting it first if needed.

    A cached file ONNX Runtime cannot open (damaged, or from an incompatible
    version) is exported again once. Returns (session, parity record or None).
    """
    record = export_onnx(path, build)
    try:
        return open_session(path, threads=threads), record
    except Exception as exc:  # onnxruntime raises its own exception types
        if record is not None:
            raise ExportError(f"ONNX Runtime cannot open {path}: {exc}") from exc
        log.warning("re-exporting %s: ONNX Runtime cannot open it (%s)", path, exc)
        path.unlink(missing_ok=True)
        record = export_onnx(path, build)
        return open_session(path, threads=threads), record
