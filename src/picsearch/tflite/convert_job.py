"""ONNX graphs to .tflite with onnx2tf; runs in the ``convert`` venv, not in picsearch's.

Usage: python convert_job.py JOB.json. The job lists ``{"onnx", "tflite", "image"}``
entries (paths); each converted model is written to its ``tflite`` path. This script
imports nothing from picsearch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

# onnx2tf fetches this file for image inputs when it is absent from the working folder.
_CALIBRATION = "calibration_image_sample_data_20x128x128x3_float32.npy"


def convert(onnx_path: Path, tflite_path: Path, *, image: bool) -> None:
    work = tflite_path.parent / f"{tflite_path.stem}.work"
    work.mkdir(parents=True, exist_ok=True)
    # onnx2tf overwrites its input with a simplified copy: give it one of its own.
    source = work / "model.onnx"
    shutil.copyfile(onnx_path, source)
    if image:
        rng = np.random.default_rng(0)
        np.save(work / _CALIBRATION, rng.random((20, 128, 128, 3), dtype=np.float32))
    # -rtpo Erf: GELU's Erf as builtin ops (a Flex op no Task Library runs);
    # -osd: signature names the metadata writer looks tensors up by.
    command = [
        str(Path(sys.executable).parent / "onnx2tf"),
        *("-i", str(source), "-o", str(work / "saved"), "-osd", "-rtpo", "Erf", "-n"),
    ]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    produced = work / "saved" / "model_float32.tflite"
    if done.returncode != 0 or not produced.is_file():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "rror" in line]
        raise SystemExit(
            f"onnx2tf could not convert {onnx_path.name}: "
            + (lines[-1].strip() if lines else "see above")
        )
    shutil.move(str(produced), tflite_path)
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    for entry in job["models"]:
        convert(Path(entry["onnx"]), Path(entry["tflite"]), image=bool(entry["image"]))


if __name__ == "__main__":
    main()
