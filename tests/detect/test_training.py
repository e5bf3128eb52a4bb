"""One training batch, export and reload: runs only where the ``train`` extra (torch) is."""

from __future__ import annotations

import numpy as np
import pytest

from scanseal.detect import data, synth

torch = pytest.importorskip(
    "torch", reason="torch is not installed (training extra); run `make train` to use it"
)


def test_one_batch_trains_and_exports(tmp_path):
    from scanseal.detect import Detector
    from scanseal.detect.training import train

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    bases = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 4)]
    pool = train.build_pool(0, bases, 16)
    for arch in ("basic", "resnet", "proposed"):
        model = train.train(arch, pool, train.Budget(steps=2, batch=8), seed=0, augment=True)
        score, heat = model(torch.zeros(2, 1, synth.SIZE, synth.SIZE))
        assert score.shape == (2,)
        assert heat.shape[:2] == (2, 1)
    train.export(model, tmp_path / "detector.onnx")
    card = (train.MODEL_DIR / "detector.json").read_text()
    (tmp_path / "detector.json").write_text(card)
    detector = Detector(tmp_path)
    scores, maps = detector.score_planes(np.stack([bases[0][0], bases[1][0]]))
    assert scores.shape == (2,)
    assert maps.shape == (2, 56, 56)
    assert np.all((scores >= 0) & (scores <= 1))


def test_time_cap_ends_training_early_and_records_the_steps():
    from scanseal.detect.training import train

    budget = train.Budget(steps=100, seconds=40.0)
    assert budget.progress(50, 0.0) == 0.5
    assert budget.progress(10, 30.0) == 0.75  # the clock is ahead of the steps
    assert train.Budget(steps=100).progress(10, 1e6) == 0.1  # no cap: steps only
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    pool = train.build_pool(1, [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 2)], 8)
    capped = train.Budget(steps=10_000, batch=4, seconds=0.5)
    train.train("basic", pool, capped, seed=1, augment=False)
    assert 0 < capped.done < 10_000
    full = train.Budget(steps=3, batch=4)
    train.train("basic", pool, full, seed=1, augment=False)
    assert full.done == 3
