"""The HTTP API fuzzed against its own OpenAPI schema by Schemathesis: a real
``picsearch serve`` on loopback over a small library (one photo's name is not UTF-8),
every operation with generated valid and invalid requests, in every phase.

It must find nothing: no 5xx answer, and every answer (errors included) as the schema
describes it. A fixed seed and a few examples per operation keep it to seconds; run it
longer by hand with ``PICSEARCH_FUZZ_EXAMPLES=500``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import solid_photo
from PIL import Image

import picsearch

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

CHECKS = "not_a_server_error,response_schema_conformance"
EXAMPLES = int(os.environ.get("PICSEARCH_FUZZ_EXAMPLES", "25"))
WARNINGS = ",".join(
    [
        "missing_auth",
        "base_url_mismatch",
        "validation_mismatch",
        "missing_deserializer",
        "unused_openapi_auth",
        "unsupported_regex",
        "method_not_allowed",
        "unresolvable_reference",
        "rate_limited",
    ]
)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    for colour in ("red", "green", "blue", "yellow", "purple"):
        solid_photo(photos / f"{colour}.jpg", colour)
    solid_photo(photos / "sub" / "orange.png", "orange")
    # A near-copy whose name is not UTF-8, so duplicates list it too.
    copy = os.path.join(os.fsencode(photos), b"caf\xe9.png")
    Image.open(photos / "red.jpg").resize((32, 24)).save(os.fsdecode(copy))
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        assert lib.index(photos, concepts="off", workers=1).added == 7
    return tmp_path / "lib.db"


@pytest.fixture
def server(library: Path, tmp_path: Path) -> Iterator[str]:
    command = [sys.executable, "-m", "picsearch.cli", "serve", "--db", str(library)]
    env = {**os.environ, "PICSEARCH_TOKEN": "", "PICSEARCH_CACHE": str(tmp_path / "cache")}
    log = tmp_path / "serve.log"
    with log.open("w") as errors:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [*command, "--port", "0", "--body-timeout", "10"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
    try:
        address = process.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:"), log.read_text()
        yield address
    finally:
        process.terminate()
        process.wait(timeout=20)
    # Whatever went wrong inside shows here, not only as a status code.
    assert "Traceback" not in log.read_text(), log.read_text()[-6000:]


def test_the_api_answers_as_its_schema_says(server: str, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server}openapi.json",
        f"--checks={CHECKS}",
        f"--max-examples={EXAMPLES}",
        "--seed=20261201",
        "--workers=1",
        "--request-timeout=20",
        "--generation-database=none",
        "--no-color",
        # Every warning but missing test data: undoing a move needs a move of this
        # library, which generated requests never name (their 404 is the right answer).
        f"--warnings={WARNINGS}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert "No issues found" in report and "17 selected / 17 total" in report, report[-6000:]
