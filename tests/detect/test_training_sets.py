"""The numpy side of training: the run's image sets, the pool and its fresh pairs, measuring
and the promotion gate, the report, and the benches built on them (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from scanseal.detect.training import data, evaluation, sets, synth


def test_fresh_pairs_replace_the_oldest_pairs_and_keep_the_kinds():
    rng = np.random.default_rng(9)
    phantoms = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 4)]
    bases = [(p, m) for p, m, _ in data.real_planes("train")[:3]] + phantoms
    pool = sets.build_pool(9, bases, 20)
    before = pool.planes.copy()
    families = list(pool.families)
    assert sets.fresh_pairs(9, bases, 0) is None
    fresh = sets.fresh_pairs(9, bases, 1.5)
    assert fresh is not None
    assert len(fresh.real) == 3
    fresh.after_step(pool, 1)  # two steps at 1.5 pairs per step: pairs 0, 1 and 2
    assert fresh.made == 3
    changed = np.abs(pool.planes.astype(np.float32) - before).reshape(20, -1).max(axis=1) > 0
    assert changed[1:6:2].all()  # new regions in pairs 0 to 2
    assert not changed[6:].any()
    assert list(pool.families) == families  # every family keeps its share of the pool
    for pair in range(3):
        mask = pool.masks[2 * pair + 1]
        assert mask.any()
        assert not pool.masks[2 * pair].any()
        assert tuple(pool.centres[2 * pair]) == (-1, -1)
        ys, xs = np.nonzero(mask)
        assert tuple(pool.centres[2 * pair + 1]) == (int(ys.mean()), int(xs.mean()))
        benign, tampered = pool.planes[2 * pair], pool.planes[2 * pair + 1]
        outside = ~mask  # both rows of a new pair still come from one base image
        assert np.abs(benign[outside].astype(np.float32) - tampered[outside]).mean() < 0.1
    for step in range(2, 12):  # past a full turn of the pool: every pair has been replaced
        fresh.after_step(pool, step)
    changed = np.abs(pool.planes.astype(np.float32) - before).reshape(20, -1).max(axis=1) > 0
    assert changed[1::2].all()  # (an unchanged real image may come back as it was)
    replay = sets.build_pool(9, bases, 20)
    again = sets.fresh_pairs(9, bases, 1.5)
    assert again is not None
    for step in range(12):
        again.after_step(replay, step)
    assert np.array_equal(replay.planes, pool.planes)  # seeded: the same new pairs


def test_fresh_pairs_draw_real_training_images_or_phantoms_never_seen():
    """An unchanged ('original') row is its base up to 8-bit rounding: after the turn-over each
    is one of the real training images or a new phantom far from every known image."""
    rng = np.random.default_rng(10)
    phantoms = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 3)]
    real = [(p, m) for p, m, _ in data.real_planes("train")[:3]]
    bases = real + phantoms
    pool = sets.build_pool(10, bases, 120)
    fresh = sets.fresh_pairs(10, bases, 60)
    assert fresh is not None
    fresh.after_step(pool, 0)
    known_real = np.stack([p for p, _ in real])
    known = np.stack([p for p, _ in bases])
    kinds = {"real": 0, "new": 0}
    for row in np.flatnonzero(pool.families == "original"):
        plane = pool.planes[row].astype(np.float32)
        if np.abs(known_real - plane).mean(axis=(1, 2)).min() < 0.004:
            kinds["real"] += 1
        else:
            assert np.abs(known - plane).mean(axis=(1, 2)).min() > 0.02
            kinds["new"] += 1
    assert kinds["real"] > 0, kinds
    assert kinds["new"] > 0, kinds


def test_windows_of_every_crop_size_hold_the_tampered_centre():
    bases = [(p, m) for p, m, _ in data.phantom_planes(np.random.default_rng(5), "train", 4)]
    pool = sets.build_pool(6, bases, 16)
    rng = np.random.default_rng(8)
    for size in (32, 48, 64, 96, 128):
        for row in range(1, 16, 2):
            y, x = sets.crop_window(pool, row, rng, size)
            cy, cx = pool.centres[row]
            assert 0 <= y <= synth.SIZE - size
            assert 0 <= x <= synth.SIZE - size
            assert y <= cy < y + size, (size, row)
            assert x <= cx < x + size, (size, row)


def test_better_needs_higher_auc_and_no_lower_accuracy():
    from scanseal.detect.training.compare import better

    shipped = {"auc": 0.85, "accuracy": 0.76}
    assert better({"auc": 0.86, "accuracy": 0.76}, shipped)
    assert not better({"auc": 0.85, "accuracy": 0.80}, shipped)  # equal AUC: not better
    assert not better({"auc": 0.90, "accuracy": 0.75}, shipped)  # accuracy fell
    assert not better(dict(shipped), shipped)


def test_promote_ships_only_a_better_model(tmp_path, monkeypatch):
    """The gate of `make train`: files copied and the card rewritten only for a better model."""
    from pathlib import Path

    from scanseal.detect.training import compare

    shipped, candidate = tmp_path / "shipped", tmp_path / "candidate"
    for folder, version in ((shipped, "old"), (candidate, "new")):
        folder.mkdir()
        (folder / "detector.onnx").write_bytes(version.encode())
        (folder / "detector.json").write_text(f'{{"version": "{version}"}}')
    docs = Path(__file__).resolve().parents[2] / "docs"
    card, metrics = tmp_path / "MODEL.md", tmp_path / "run-metrics.json"
    card.write_text((docs / "MODEL.md").read_text())
    metrics.write_text((docs / "MODEL-metrics.json").read_text())
    before = card.read_text()
    monkeypatch.setattr(compare, "MODEL_DIR", shipped)
    lines = {shipped: {"version": "old", "auc": 0.85, "accuracy": 0.76}}

    def measure(dirs, _seed, _phantoms):
        return [lines[folder] for folder in dirs]

    monkeypatch.setattr(compare, "measure", measure)
    lines[candidate] = {"version": "new", "auc": 0.84, "accuracy": 0.90}
    assert not compare.promote(candidate, metrics, card, 0, 8)
    assert (shipped / "detector.onnx").read_bytes() == b"old"
    assert card.read_text() == before
    assert not (tmp_path / "MODEL-metrics.json").exists()

    lines[candidate] = {"version": "new", "auc": 0.90, "accuracy": 0.80}
    assert compare.promote(candidate, metrics, card, 0, 8)
    assert (shipped / "detector.onnx").read_bytes() == b"new"
    assert (shipped / "detector.json").read_text() == '{"version": "new"}'
    assert (tmp_path / "MODEL-metrics.json").exists()
    assert "<!-- metrics:begin -->" in card.read_text()


def test_training_bases_add_views_of_real_studies_only_when_asked():
    plain = sets.base_images(3, "val", 2)
    viewed = sets.base_images(3, "val", 2, views=2)
    real = len(plain) - 2
    studies = {i.study for i in data.real_images() if data.split_of(i.study) == "val"}
    assert 0 < len(viewed) - len(plain) <= 2 * len(studies)
    same = list(zip(plain[:real], viewed[:real], strict=True))
    same += list(zip(plain[-2:], viewed[-2:], strict=True))  # the phantoms come last, unchanged
    assert all(np.array_equal(a, b) and m == n for (a, m), (b, n) in same)
    assert not any(m.startswith("PH-") for _, m in viewed[real:-2])


def test_fit_check_scores_pool_rows_with_their_labels_and_the_shipped_card():
    """bench/detect_fit.py: pool rows keep their labels (benign even rows, tampered odd ones)
    and a set is scored at the model card's own threshold."""
    from evaluation_support import bench_module
    from scanseal.detect import MODEL_DIR

    fit = bench_module("detect_fit.py", "scanseal_bench_detect_fit")
    rng = np.random.default_rng(8)
    bases = [(p, m) for p, m, _ in data.phantom_planes(rng, "train", 2)]
    samples = fit.pool_samples(sets.build_pool(8, bases, 8), 3)
    assert [s.tampered for s in samples] == [False, True] * 3
    assert all(s.mask.any() == s.tampered for s in samples)
    row = fit.measure(MODEL_DIR, samples + synth.balanced_set(rng, bases[:1]))
    assert 0.0 <= row["accuracy"] <= 1.0
    assert 0.0 <= row["false_alarm_rate"] <= 1.0


def test_report_names_the_network_when_the_run_trained_another_architecture():
    """`make train TRAIN_ARGS="--arch deep"`: the proposed rows of the ablation say which
    network they are; the default run keeps the plain labels."""
    from scanseal.detect.training import report

    deep = "\n".join(report._ablation({"args": {"arch": "deep"}, "ablation": {}}))
    assert "Proposed + augmentation (shipped), `deep` network | not run" in deep
    assert "Basic CNN (3 layers) | not run" in deep
    plain = "\n".join(report._ablation({"args": {"arch": "proposed"}, "ablation": {}}))
    assert "`" not in plain


def test_miss_table_measures_edit_strength_in_noise_units_and_bins_recall():
    """bench/detect_misses.py: an edit of k noise levels over a globally re-saved image has
    strength k; recall is counted per bin and family, empty cells are marked."""
    from evaluation_support import bench_module

    misses = bench_module("detect_misses.py", "scanseal_bench_detect_misses")
    rng = np.random.default_rng(2)
    base = np.clip(0.5 + 0.02 * rng.standard_normal((64, 64)), 0, 1).astype(np.float32)
    noise = synth._noise_level(base)
    mask = np.zeros(base.shape, bool)
    mask[20:40, 20:40] = True
    edited = base + 0.01 + np.where(mask, 6 * noise, 0).astype(np.float32)  # global + local
    sample = synth.Sample(edited, mask, True, "intensity", "PH-CT")
    assert misses.strength(sample, base) == pytest.approx(6.0, rel=1e-3)
    rows = [
        {"family": "intensity", "area": 300, "strength": 6.0, "detected": True},
        {"family": "intensity", "area": 350, "strength": 1.0, "detected": False},
        {"family": "splice", "area": 5000, "strength": 12.0, "detected": True},
    ]
    by_area = misses.table(rows, "area", misses.AREA_EDGES, "px").splitlines()
    assert by_area[2].startswith("| 0-400 px | 50% (2) | –")
    assert by_area[5].startswith("| ≥ 2000 px | 100% (1) |")
    by_strength = misses.table(rows, "strength", misses.STRENGTH_EDGES, "× noise").splitlines()
    assert by_strength[2].startswith("| < 2 × noise | 0% (1) |")
    for row in rows:
        row["modality"] = "US" if row["family"] == "splice" else "CT"
    strong = misses.strong_by_modality(rows, 5.0).splitlines()
    assert strong[0] == "| edits ≥ 5 × noise | CT | US |"
    assert strong[2] == "| recall (n) | 100% (1) | 100% (1) |"
    assert misses.strong_by_modality(rows, 10.0).splitlines()[0] == "| edits ≥ 10 × noise | US |"


def test_compare_reports_the_test_split_only_when_asked(capsys):
    """`compare --split test` measures on the run's test set (for reporting); the default, and
    the gate, use validation."""
    from scanseal.detect import MODEL_DIR
    from scanseal.detect.training import compare

    (test_line,) = compare.measure([MODEL_DIR], 3, 6, "test")
    assert test_line["split"] == "test"
    assert test_line["samples"] == len(sets.held_out(3, "test", 6)[0])
    assert set(test_line["false_alarms_by_change"]) == set(synth.BENIGN)
    (val_line,) = compare.measure([MODEL_DIR], 3, 16)
    assert val_line["split"] == "val"
    assert val_line["samples"] == len(sets.held_out(3, "val", 16)[0])
    assert val_line["samples"] != test_line["samples"]
    assert '"split": "test"' in capsys.readouterr().out


def test_evaluation_reports_real_studies_and_phantoms_apart():
    """Phantoms are most of every set: the real images get their own figures, computed on
    exactly their samples, and the report shows them with the false alarms of each."""
    from scanseal.detect.training import report

    rng = np.random.default_rng(12)
    plane = np.full((synth.SIZE, synth.SIZE), 0.5, np.float32)
    mask = np.zeros_like(plane, dtype=bool)
    mask[10:20, 10:20] = True
    samples, scores = [], []
    for modality, alarm in (("CT", 0.9), ("PH-CT", 0.1)):  # real authentic images score high
        for _ in range(4):
            samples.append(synth.Sample(plane, mask, True, "splice", modality))
            scores.append(0.8 + 0.1 * rng.random())
            samples.append(synth.Sample(plane, np.zeros_like(mask), False, "original", modality))
            scores.append(alarm)
    maps = [np.zeros((56, 56), np.float32)] * len(samples)
    result = evaluation.evaluate(samples, np.array(scores), maps, 0.5)
    real, phantom = result["sources"]["real"], result["sources"]["phantom"]
    assert real["n"] == phantom["n"] == 8
    assert real["false_alarm_rate"] == 1.0
    assert phantom["false_alarm_rate"] == 0.0
    assert result["overall"]["false_alarm_rate"] == 0.5
    text = "\n".join(report._sources(result))
    assert "### Shipped model on real studies and on phantoms" in text
    assert "False alarms on authentic images at the threshold: real 100.0% · phantom 0.0%." in text
    assert report._sources({"overall": {}}) == []  # a run from before the table existed
