"""The two converter environments, and running a job in one of them.

TensorFlow (for onnx2tf) wants protobuf 4 and the Task Library's metadata writers
protobuf 3, so each lives in its own venv, built by ``make tflite-env``; picsearch
runs a job script there as a subprocess and never imports TensorFlow itself.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import PicsearchError

__all__ = [
    "ENV_VARIABLE",
    "BUILD_COMMAND",
    "ConverterEnvMissing",
    "ConversionFailed",
    "ConverterEnv",
    "find_env",
    "default_env_folder",
]

ENV_VARIABLE = "PICSEARCH_TFLITE_ENV"
BUILD_COMMAND = "make tflite-env"
#: Lines of a failed job's stderr that the error message quotes.
_TAIL_LINES = 3
_JOBS = Path(__file__).parent


class ConverterEnvMissing(PicsearchError):
    """A converter venv is not built; the message holds the command that builds it."""


class ConversionFailed(PicsearchError):
    """A job in a converter venv failed; the message ends with its last stderr lines."""


def default_env_folder() -> Path:
    """``$PICSEARCH_TFLITE_ENV``, else ``~/.cache/picsearch/tflite-env`` (where the make
    target builds it)."""
    if os.environ.get(ENV_VARIABLE):
        return Path(os.environ[ENV_VARIABLE]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "picsearch" / "tflite-env"


@dataclass(frozen=True)
class ConverterEnv:
    """The folder holding ``convert/`` (onnx2tf, TensorFlow) and ``metadata/``
    (tflite-support 0.4.4)."""

    folder: Path

    def python(self, part: str) -> Path:
        return self.folder / part / "bin" / "python"

    def run(
        self, part: str, job: str, *arguments: str, doing: str = "", timeout: float = 1800
    ) -> str:
        """Run ``job`` (a script beside this module) in the ``part`` venv; its stdout.
        ``doing`` says what for in the error message."""
        python = self.python(part)
        bin_folder = str(python.parent)
        # onnx2tf runs onnxsim as a command: the venv's bin goes first on PATH.
        env = dict(os.environ, PATH=bin_folder + os.pathsep + os.environ.get("PATH", ""))
        # The Task Library's native modules link libusb; the make target puts a copy here.
        libraries = [str(self.folder / part / "lib"), os.environ.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, libraries))
        env.pop("PYTHONPATH", None)  # picsearch's own packages stay out of the venv
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [str(python), str(_JOBS / f"{job}.py"), *arguments]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ConversionFailed(
                f"{doing or job} took over {timeout:.0f} s and was stopped"
            ) from None
        if done.returncode != 0:
            raise ConversionFailed(f"{doing or job} failed: {_tail(done.stderr)}")
        return done.stdout


def _tail(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:]) or "no message"


def find_env(folder: str | os.PathLike[str] | None = None) -> ConverterEnv:
    """The converter environment, or ConverterEnvMissing naming the command that builds it."""
    env = ConverterEnv(Path(folder).expanduser() if folder else default_env_folder())
    missing = [part for part in ("convert", "metadata") if not _ready(env, part)]
    if missing:
        # The make target builds into $PICSEARCH_TFLITE_ENV too; name another folder.
        where = "" if env.folder == default_env_folder() else f" TFLITE_ENV={env.folder}"
        raise ConverterEnvMissing(
            f"the TFLite converter environment is missing ({' and '.join(missing)} in "
            f"{env.folder}): build it with `{BUILD_COMMAND}{where}` in a picsearch checkout"
        )
    return env


def _ready(env: ConverterEnv, part: str) -> bool:
    marker = env.folder / part / ".installed"
    return marker.is_file() and env.python(part).exists()
