"""Shared fixtures: keep every test out of the user's home, and make small photo folders."""

from __future__ import annotations

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
