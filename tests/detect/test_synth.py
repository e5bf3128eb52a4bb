"""The data generators: deterministic, in range, with honest masks, and split by study."""

from __future__ import annotations

import numpy as np
import pytest

from scanseal.detect.training import data, synth


def _base(seed: int = 0) -> synth.Plane:
    return synth.phantom(np.random.default_rng(seed), "PH-CT")


def test_same_seed_same_samples():
    first = synth.make_sample(np.random.default_rng(5), _base(), _base(1), "PH-CT", "splice")
    again = synth.make_sample(np.random.default_rng(5), _base(), _base(1), "PH-CT", "splice")
    assert np.array_equal(first.plane, again.plane)
    assert np.array_equal(first.mask, again.mask)


@pytest.mark.parametrize("family", synth.FAMILIES)
def test_every_family_changes_pixels_inside_its_mask(family):
    rng = np.random.default_rng(3)
    base = _base()
    plane, mask = synth.TAMPERS[family](rng, base, _base(1))
    assert plane.dtype == np.float32
    assert plane.shape == (synth.SIZE, synth.SIZE)
    assert plane.min() >= 0.0
    assert plane.max() <= 1.0
    assert 12 <= mask.sum() < 0.2 * mask.size
    outside = ~mask
    assert np.abs(plane - base)[mask].mean() > np.abs(plane - base)[outside].mean()


@pytest.mark.parametrize("kind", synth.BENIGN)
def test_benign_changes_have_no_mask(kind):
    sample = synth.make_sample(np.random.default_rng(2), _base(), _base(1), "PH-MR", kind)
    assert not sample.tampered
    assert not sample.mask.any()
    assert sample.plane.shape == (synth.SIZE, synth.SIZE)


def test_jpeg2000_is_lossy_and_close_and_repeatable():
    """A real lossy round trip: pixels move (the smoothing a detector must not flag), but by
    less than the jpeg change at its lowest quality, and identically every time."""
    base = _base()
    once = synth.jpeg2000(base, 10)
    assert once.dtype == np.float32
    assert once.shape == base.shape
    error = float(np.sqrt(((once - base) ** 2).mean()))
    assert 5e-4 < error < 0.02
    assert error < float(np.sqrt(((synth.jpeg2000(base, 40) - base) ** 2).mean()))
    assert np.array_equal(once, synth.jpeg2000(base, 10))
    residual = base - synth.gaussian_blur(base, 1.0)  # fine texture: smoothed away in part
    kept = once - synth.gaussian_blur(once, 1.0)
    assert float(kept.std()) < float(residual.std())


@pytest.mark.parametrize("style", synth.PHANTOM_STYLES)
def test_phantoms_have_structure(style):
    plane = synth.phantom(np.random.default_rng(9), style)
    assert plane.std() > 0.05


def test_no_study_is_in_two_splits():
    by_study: dict[str, set[str]] = {}
    for image in data.real_images():
        by_study.setdefault(image.study, set()).add(data.split_of(image.study))
    assert all(len(splits) == 1 for splits in by_study.values())
    assert {"train", "val", "test"} <= set().union(*by_study.values())


def test_real_views_stay_in_their_split_and_count_by_study():
    views = data.real_views("val", np.random.default_rng(5), 3)
    studies = {image.study for image in data.real_images() if data.split_of(image.study) == "val"}
    assert {study for _, _, study in views} <= studies
    assert len(studies) * 2 <= len(views) <= len(studies) * 3  # a few blank views may be skipped
    assert all(view.shape == (synth.SIZE, synth.SIZE) and view.std() > 0.02 for view, _, _ in views)
    again = data.real_views("val", np.random.default_rng(5), 3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(views, again, strict=True))
    originals = [plane for plane, _, _ in data.real_planes("val")]
    fresh = [v for v, _, _ in views if not any(np.array_equal(v, o) for o in originals)]
    assert len(fresh) > len(views) // 2  # mostly other frames and fields of view


def test_balanced_set_covers_every_family_and_benign_change():
    bases = [(_base(i), "PH-CT") for i in range(2)]
    samples = synth.balanced_set(np.random.default_rng(0), bases)
    assert {s.family for s in samples} == set(synth.FAMILIES) | set(synth.BENIGN)
    assert sum(s.tampered for s in samples) == 2 * len(synth.FAMILIES)
