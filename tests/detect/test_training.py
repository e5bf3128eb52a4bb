"""One training batch, export and reload: runs only where the ``train`` extra (torch) is."""

from __future__ import annotations

import numpy as np
import pytest

from scanseal.detect import MODEL_DIR
from scanseal.detect.training import data, sets, synth

torch = pytest.importorskip(
    "torch", reason="torch is not installed (training extra); run `make train` to use it"
)


def test_one_batch_trains_and_exports(tmp_path):
    from scanseal.detect import Detector
    from scanseal.detect.training import train

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    bases = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 4)]
    pool = sets.build_pool(0, bases, 16)
    for arch in ("basic", "resnet", "proposed", "deep", "logres", "residual"):
        model = train.train(arch, pool, train.Budget(steps=2, batch=8), seed=0, augment=True)
        score, heat = model(torch.zeros(2, 1, synth.SIZE, synth.SIZE))
        assert score.shape == (2,)
        assert heat.shape[:2] == (2, 1)
    train.export(model, tmp_path / "detector.onnx")
    card = (MODEL_DIR / "detector.json").read_text()
    (tmp_path / "detector.json").write_text(card)
    detector = Detector(tmp_path)
    scores, maps = detector.score_planes(np.stack([bases[0][0], bases[1][0]]))
    assert scores.shape == (2,)
    assert maps.shape == (2, 56, 56)
    assert np.all((scores >= 0) & (scores <= 1))


def test_bfloat16_training_keeps_the_high_pass_residuals_in_float32():
    """Under bfloat16 autocast the fixed filters still see float32 pixels: a 12-bit step
    (1/4095) survives, where bfloat16 (a step of 2^-8 just under 1.0) would erase it; the
    weights stay float32, so the exported model is the usual float32 graph."""
    from scanseal.detect.training import train
    from scanseal.detect.training.nets import Proposed

    model = Proposed()
    plane = torch.full((1, 1, 8, 8), 3700 / 4095)
    plane[0, 0, 4, 4] = 3701 / 4095
    with torch.autocast("cpu", dtype=torch.bfloat16):
        residuals = model.residuals(plane)
        rounded = model.high_pass(plane)
    assert residuals.dtype == torch.float32
    assert residuals[0, 1, 4, 4].item() == pytest.approx(32 / 4095, rel=1e-3)  # Laplacian ×8
    assert rounded[0, 1, 4, 4].item() == 0.0  # what bfloat16 rounding would have left
    torch.set_num_threads(1)
    rng = np.random.default_rng(4)
    pool = sets.build_pool(4, [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 2)], 8)
    budget = train.Budget(steps=2, batch=4, bf16=True)
    trained = train.train("proposed", pool, budget, seed=4, augment=True)
    assert budget.done == 2
    assert all(p.dtype == torch.float32 for p in trained.parameters())


def test_time_cap_ends_training_early_and_records_the_steps():
    from scanseal.detect.training import train

    budget = train.Budget(steps=100, seconds=40.0)
    assert budget.progress(50, 0.0) == 0.5
    assert budget.progress(10, 30.0) == 0.75  # the clock is ahead of the steps
    assert train.Budget(steps=100).progress(10, 1e6) == 0.1  # no cap: steps only
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    pool = sets.build_pool(1, [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 2)], 8)
    capped = train.Budget(steps=10_000, batch=4, seconds=0.5)
    train.train("basic", pool, capped, seed=1, augment=False)
    assert 0 < capped.done < 10_000
    full = train.Budget(steps=3, batch=4)
    train.train("basic", pool, full, seed=1, augment=False)
    assert full.done == 3


def test_batches_pair_one_base_benign_and_tampered_through_one_window():
    from scanseal.detect.training import train

    rng = np.random.default_rng(2)
    bases = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 6)]
    pool = sets.build_pool(3, bases, 24)
    assert all(f in synth.BENIGN for f in pool.families[0::2])
    assert all(f in synth.FAMILIES for f in pool.families[1::2])
    stack = np.stack([p for p, _ in bases])
    for pair in range(12):
        benign, tampered = pool.planes[2 * pair], pool.planes[2 * pair + 1]
        outside = ~pool.masks[2 * pair + 1]
        to_benign = np.abs(stack - benign).mean(axis=(1, 2))
        to_tampered = np.abs(stack[:, outside] - tampered[outside]).mean(axis=1)
        assert to_benign.argmin() == to_tampered.argmin(), pair  # one base image per pair

    rows = np.array([0, 1, 6, 7])
    planes, masks, labels = train._batch(pool, rows, np.random.default_rng(4), True, train.CROP)
    assert planes.shape == (4, 1, train.CROP, train.CROP)
    assert labels.tolist() == [0.0, 1.0, 0.0, 1.0]  # the window holds the tampered region
    assert masks[0::2].sum() == 0


def test_two_views_average_the_plane_and_its_half_turn_in_torch_and_onnx(tmp_path):
    """The exported file scores exactly what calibration scored: both views, averaged."""
    import onnxruntime

    from scanseal.detect.training import train
    from scanseal.detect.training.nets import Proposed

    torch.manual_seed(3)
    model = Proposed().eval()
    planes = torch.rand(3, 1, synth.SIZE, synth.SIZE)
    with torch.no_grad():
        score, heat = train.TwoViews(model)(planes)
        plain_score, plain_heat = model(planes)
        turned_score, turned_heat = model(torch.flip(planes, dims=(2, 3)))
    assert torch.allclose(score, (plain_score + turned_score) / 2, atol=1e-5)
    turned_back = torch.flip(torch.sigmoid(turned_heat), dims=(2, 3))
    assert torch.allclose(heat, (torch.sigmoid(plain_heat) + turned_back) / 2, atol=1e-5)
    assert not torch.allclose(score, plain_score, atol=1e-5)  # the second view counts
    train.export(model, tmp_path / "detector.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "detector.onnx"))
    onnx_score, onnx_heat = session.run(None, {"image": planes.numpy()})
    np.testing.assert_allclose(onnx_score, score.numpy(), atol=1e-4)
    np.testing.assert_allclose(onnx_heat, heat.numpy(), atol=1e-4)


def test_recipe_comparison_parses_variants_and_measures_one_on_validation():
    """bench/detect_recipe.py: a typo is refused; a variant's options reach its budget; a short
    run reports both scorings on the validation set it was given."""
    from evaluation_support import bench_module
    from scanseal.detect.training import train

    recipe = bench_module("detect_recipe.py", "scanseal_bench_detect_recipe")
    assert recipe.parse_variant("crop=64,lr=0.001") == {"crop": 64, "lr": 0.001}
    with pytest.raises(SystemExit, match="key=value"):
        recipe.parse_variant("crops=64")
    budget = recipe._budget({"crop": 64, "full": 0.5, "steps": 3}, 0.0)
    assert (budget.crop, budget.full_share, budget.steps) == (64, 0.5, 3)
    assert budget.lr == train.Budget.lr
    assert not budget.bf16  # float32 unless asked
    assert recipe.parse_variant("bf16=1,arch=deep") == {"bf16": 1, "arch": "deep"}
    assert recipe._budget({"bf16": 1}, 0.0).bf16
    rng = np.random.default_rng(5)
    bases = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 3)]
    assert recipe.parse_variant("views=4") == {"views": 4}
    pool = sets.build_pool(5, bases, 8)
    recipe._DATA.update(
        pools={0: pool},
        bases={0: bases},
        val=synth.balanced_set(np.random.default_rng(6), bases[:1]),
    )
    row = recipe.run_variant(("crop=64,steps=2,batch=4", 0.0, 5))
    assert row["steps"] == 2
    assert recipe.parse_variant("fresh=0.5") == {"fresh": 0.5}
    before = pool.planes.copy()
    recipe.run_variant(("fresh=2,steps=2,batch=4", 0.0, 5))  # 4 new pairs: the whole pool
    assert not np.array_equal(pool.planes[1::2], before[1::2])
    with pytest.raises(KeyError):  # a views value whose pool was not built
        recipe.run_variant(("views=4,steps=1", 0.0, 5))
    for scoring in ("two_views", "one_view"):
        assert 0.0 <= row[scoring]["auc"] <= 1.0
        assert 0.0 <= row[scoring]["accuracy"] <= 1.0


def test_warm_start_reads_an_exported_proposed_model_back_exactly(tmp_path):
    """The folded batch norms come back as identities plus bias: the read-back network scores
    as the ONNX file does, and fine-tuning keeps those norms fixed."""
    from scanseal.detect import Detector
    from scanseal.detect.training import train, warmstart
    from scanseal.detect.training.nets import Proposed

    torch.set_num_threads(1)
    source = tmp_path / "source"
    source.mkdir()
    model = Proposed().eval()
    for module in model.modules():  # non-trivial statistics, so folding them matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    train.export(model, source / "detector.onnx")
    (source / "detector.json").write_text((MODEL_DIR / "detector.json").read_text())
    state = warmstart.proposed_from_onnx(source / "detector.onnx")
    back = Proposed()
    back.load_state_dict(state)
    planes = np.random.default_rng(2).random((2, synth.SIZE, synth.SIZE)).astype(np.float32)
    expected, _ = Detector(source).score_planes(planes)
    logits, _ = train.predict(back, [synth.Sample(p, p > 2, False, "x", "CT") for p in planes])
    temperature = Detector(source).temperature
    assert np.allclose(1 / (1 + np.exp(-logits / temperature)), expected, atol=1e-4)
    rng = np.random.default_rng(0)
    bases = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 2)]
    pool = sets.build_pool(0, bases, 8)
    tuned = train.train("proposed", pool, train.Budget(steps=2, batch=4), seed=0,
                        augment=True, init=state)  # fmt: skip
    norm = next(m for m in tuned.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(norm.running_var, state["stem.1.running_var"])


def test_a_recipe_over_the_held_out_false_alarm_bound_is_never_shipped(tmp_path):
    """ship refuses before training when the cross-validation's held-out false alarms exceed
    the 2 % bound, and writes nothing."""
    import json

    from scanseal.detect.training import ship

    (tmp_path / "cv").mkdir()
    measured = {"recipe": {"arch": "proposed", "minutes": 0.01}, "threshold": 0.9,
                "leave_one_source_out_pooled": 0.021}  # fmt: skip
    (tmp_path / "cv" / "crossval.json").write_text(json.dumps(measured))
    with pytest.raises(SystemExit, match="not shipped"):
        ship.ship(tmp_path / "cv", tmp_path / "model")
    assert not (tmp_path / "model").exists()
