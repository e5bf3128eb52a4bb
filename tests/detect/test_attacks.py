"""The evaluation's own tampering (training.attacks): every family edits inside its mask, leaves
the rest untouched, repeats under a seed, and shares no code with the training generators."""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from scanseal.detect.training import attacks
from scanseal.ingest import preprocess


@functools.cache
def _plane(name: str) -> np.ndarray:
    return preprocess(Path(str(get_testdata_file(name))))


def _run(family: str, seed: int, base: str = "CT_small.dcm") -> tuple[np.ndarray, np.ndarray]:
    return attacks.tamper(family, np.random.default_rng(seed), _plane(base), _plane("MR_small.dcm"))


@pytest.mark.parametrize("family", attacks.FAMILIES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_each_family_changes_pixels_only_near_its_mask(family, seed):
    base = _plane("CT_small.dcm")
    out, mask = _run(family, seed)
    assert out.dtype == np.float32
    assert out.shape == base.shape
    assert 0.0 <= out.min() <= out.max() <= 1.0
    assert 20 <= mask.sum() < 0.25 * mask.size
    changed = np.abs(out - base) > 1e-6
    assert changed.any(), "the attack left the image as it was"
    near = attacks._dilate(mask, attacks.FEATHER_MAX)
    assert not (changed & ~near).any(), "pixels changed away from the mask"
    assert np.abs(out - base)[mask].mean() > 1e-3


@pytest.mark.parametrize("family", attacks.FAMILIES)
def test_each_family_is_deterministic_under_a_seed(family):
    first, first_mask = _run(family, 7, "MR_small.dcm")
    again, again_mask = _run(family, 7, "MR_small.dcm")
    other, _ = _run(family, 8, "MR_small.dcm")
    assert np.array_equal(first, again)
    assert np.array_equal(first_mask, again_mask)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("how", attacks.BLENDS)
def test_every_blend_meets_the_target_outside_the_region(how):
    base = _plane("CT_small.dcm")
    source = np.clip(base[::-1].copy() + 0.1, 0, 1).astype(np.float32)
    region = attacks.polygon(np.random.default_rng(1), base.shape, (112, 112), 30)
    out, weight = attacks.blend(np.random.default_rng(2), base, source, region, how)
    far = ~attacks._dilate(region, attacks.FEATHER_MAX)
    assert np.array_equal(out[far], base[far])
    assert weight[region].mean() > 0.5
    assert np.abs(out - base)[region].mean() > 0.02


def test_poisson_keeps_the_source_detail_and_meets_the_target_at_the_border():
    """A bright textured patch cloned onto a dark ramp: its offset is gone at the border, its
    texture (the Laplacian) is kept inside."""
    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    target = (0.2 + 0.002 * xx).astype(np.float32)
    source = (0.7 + 0.05 * np.sin(xx * 0.8) * np.sin(yy * 0.8)).astype(np.float32)
    region = np.zeros((64, 64), bool)
    region[16:48, 16:48] = True
    out = attacks.poisson(target, source, region, iterations=3000)
    assert abs(float(out[31, 16]) - float(target[31, 15])) < 0.06
    assert abs(float(out[16:48, 16:48].mean()) - float(target[16:48, 16:48].mean())) < 0.05

    def laplacian(a):
        return 4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]

    inner = (slice(18, 46), slice(18, 46))
    kept = laplacian(out)[inner] - laplacian(source)[inner]
    assert float(np.abs(kept).max()) < 1e-3


def test_splice_takes_a_donor_of_another_size():
    donor = _plane("MR_small.dcm")[:100, :150]
    out, mask = attacks.splice(np.random.default_rng(3), _plane("CT_small.dcm"), donor)
    assert out.shape == (224, 224)
    assert mask.any()


@pytest.mark.parametrize("kind", attacks.RESAVES)
def test_benign_resaves_keep_the_image_close(kind):
    base = _plane("MR_small.dcm")
    out = attacks.resave(np.random.default_rng(4), base, kind)
    assert out.shape == base.shape
    assert out.dtype == np.float32
    assert float(np.abs(out - base).mean()) < 0.08


def test_unknown_family_and_change_are_refused():
    base = _plane("CT_small.dcm")
    with pytest.raises(ValueError, match="unknown tamper family"):
        attacks.tamper("resample", np.random.default_rng(0), base, base)
    with pytest.raises(ValueError, match="unknown benign change"):
        attacks.resave(np.random.default_rng(0), base, "original")


def test_written_apart_from_the_training_generators():
    tree = ast.parse(inspect.getsource(attacks))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("synth" in name or "training" in name for name in imported), imported
