"""The committed model: size, card, accuracy on a seeded held-out set, and a torch-free runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from scanseal.detect import MODEL_DIR, Detector, default_detector
from scanseal.detect.heat import mask_of
from scanseal.detect.training import metrics, synth
from scanseal.detect.training.data import check_set


@cache
def _card() -> dict:
    return json.loads((MODEL_DIR / "detector.json").read_text())


@cache
def _scored() -> tuple[list[synth.Sample], np.ndarray, np.ndarray]:
    samples = synth.balanced_set(np.random.default_rng(4242), check_set())
    scores, maps = default_detector().score_planes(np.stack([s.plane for s in samples]))
    return samples, scores, maps


def test_model_is_small_and_described():
    assert (MODEL_DIR / "detector.onnx").stat().st_size <= 10 * 2**20
    card = _card()
    assert card["version"]
    assert 0 < card["threshold"] < 1
    assert card["temperature"] > 0
    assert card["input"]["shape"] == [None, 1, 224, 224]
    assert set(card["acceptance"]) == {"accuracy", "auc", "loc_f1"}


def test_meets_its_acceptance_floor_on_held_out_studies():
    samples, scores, maps = _scored()
    labels = np.array([s.tampered for s in samples])
    threshold = default_detector().threshold
    result = metrics.classification(labels, scores, threshold)
    floor = _card()["acceptance"]
    assert result["accuracy"] >= floor["accuracy"], result
    assert result["auc"] >= floor["auc"], result
    predicted = [mask_of(m, synth.SIZE) for m in maps]
    local = metrics.localisation([s.mask for s in samples], predicted)
    assert local["loc_f1"] >= floor["loc_f1"], local


def test_batch_and_single_inference_agree():
    samples, scores, _ = _scored()
    detector = Detector()
    single = detector.screen_plane(samples[0].plane)
    assert abs(single.score - float(scores[0])) < 1e-5


@pytest.mark.parametrize("policy", ["flag", "block"])
def test_manifest_entry_names_model_and_policy(policy):
    samples, _, _ = _scored()
    entry = default_detector().screen_plane(samples[0].plane).manifest_entry(policy)
    assert set(entry) == {"score", "threshold", "tampered", "model_version", "policy"}
    assert entry["policy"] == policy
    assert entry["model_version"] == _card()["version"]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )


def test_runtime_never_imports_torch_or_training(tmp_path):
    """Screening (the CLI and the detector) is inference only: no torch, and none of the
    generators, data sources or metrics that training uses."""
    code = (
        "import sys, numpy as np\n"
        "import scanseal.cli\n"
        "from scanseal.detect import default_detector\n"
        "default_detector().screen_plane(np.zeros((224, 224), np.float32))\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "loaded = [m for m in sys.modules if m.startswith('scanseal.detect.training')]\n"
        "assert not loaded, loaded\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr


def test_training_data_and_metrics_import_without_torch():
    """The tests and bench/ build evaluation sets where torch is not installed."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from scanseal.detect.training import data, metrics, synth\n"
        "from scanseal.detect.training import attacks, falsealarm, sources, unseen\n"
        "from scanseal.detect.training import compose, crossval_data\n"
        "assert synth.balanced_set and data.check_set and metrics.auc\n"
        "assert compose.make_pair and crossval_data.training_images\n"
        "assert attacks.tamper and falsealarm.choose and sources.images and unseen.build\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
