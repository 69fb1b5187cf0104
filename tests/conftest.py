"""Shared fixtures: keep every test out of the user's home, and make small photo folders."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picsearch.encoders.tiny import COLOURS


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test session, so the default model is exported once."""
    return tmp_path_factory.mktemp("picsearch-cache")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("PICSEARCH_CACHE", str(model_cache))
    monkeypatch.delenv("PICSEARCH_DB", raising=False)
    return home


def plain_user_prefix() -> list[str]:
    """A command prefix under which chmod 000 keeps a file unreadable (skips if none):
    as root (CI), setpriv drops the capabilities that let root ignore file modes."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0o000)
        test = subprocess.run([*prefix, "test", "-r", probe.name], capture_output=True)
    if test.returncode != 1:
        pytest.skip("setpriv cannot drop root's file capabilities here")
    return prefix


def picsearch_command(
    *argv: str, as_plain_user: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the ``picsearch`` command in a new process; as_plain_user drops root's power
    to read and write any file, so that file modes apply as they do for everyone else."""
    prefix = plain_user_prefix() if as_plain_user else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "picsearch.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def solid_photo(path: Path, colour: str, size: tuple[int, int] = (64, 48), **save: object) -> Path:
    """A photo of one colour, with a little deterministic noise so files differ."""
    rng = np.random.default_rng(abs(hash((colour, size))) % 2**32)
    pixels = np.array(COLOURS[colour], dtype=np.int16) + rng.integers(-8, 9, (*size[::-1], 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, **save)
    return path


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    """red.jpg, green.png, blue.jpg, yellow.webp under photos/ (one in a subfolder)."""
    folder = tmp_path / "photos"
    solid_photo(folder / "red.jpg", "red")
    solid_photo(folder / "green.png", "green")
    solid_photo(folder / "sub" / "blue.jpg", "blue")
    solid_photo(folder / "yellow.webp", "yellow")
    return folder


def striped(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> Path:
    """A photo of 16 horizontal bands of seeded colours: what the tiny model's visual space sees."""
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, 256, (16, 1, 3))
    pixels = np.repeat(np.repeat(bands, size[1] // 16 + 1, axis=0)[: size[1]], size[0], axis=1)
    pixels = pixels + rng.integers(-6, 7, pixels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=95)
    return path


def sha(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_clip_model(*, vocab_size: int, bos: int, eos: int, pad: int) -> object:
    """A randomly initialised tiny transformers CLIPModel (seed 0): 2 layers of width 32,
    16 tokens, 32-pixel images in 8-pixel patches, 16-d joint space. Tests save it with
    the tokenizer and image processor of the layout they check."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    config = transformers.CLIPConfig(
        text_config={
            **layers,
            "num_attention_heads": 2,
            "vocab_size": vocab_size,
            "max_position_embeddings": 16,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": pad,
        },
        vision_config={**layers, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    return transformers.CLIPModel(config).eval()
