"""The model card's gallery says what the detector says: right plane, right score, right verdict."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from evaluation_support import bench_module
from scanseal.detect import MODEL_DIR, Detector, heat
from scanseal.detect.training import data, synth

gallery = bench_module("detect_gallery.py", "scanseal_bench_detect_gallery")

KINDS = ("splice", "original")


@pytest.fixture(scope="module")
def rows():
    bases = data.phantom_planes(np.random.default_rng(7), "test", 2)
    return gallery.make_rows(Detector(MODEL_DIR), [(p, m) for p, m, _ in bases], KINDS, seed=11)


@pytest.fixture(scope="module")
def picture(rows):
    return np.asarray(gallery.render(rows, "test gallery"))


def _panel(picture, row, column):
    top = gallery.row_top(row) + gallery.CAPTION
    left = gallery.panel_left(column)
    return picture[top : top + synth.SIZE, left : left + synth.SIZE]


def test_two_rows_make_three_224_panels_each(picture):
    header, row_height = gallery.HEADER, gallery.CAPTION + 224 + gallery.GAP
    assert picture.shape == (header + 2 * row_height, 3 * 224 + 4 * gallery.GAP, 3)


def test_caption_and_heat_match_a_fresh_screening_of_the_same_plane(rows, picture):
    """A fresh detector screens each shown plane again; the row must say what it says."""
    fresh = Detector(MODEL_DIR)
    for index, (row, kind) in enumerate(zip(rows, KINDS, strict=True)):
        shown = _panel(picture, index, 0)[..., 0].astype(np.float32) / 255
        assert np.abs(shown - row.sample.plane).max() <= 0.5 / 255 + 1e-6
        truth = fresh.screen_plane(row.sample.plane)
        text = gallery.caption(row)
        assert text.startswith(f"{kind} ({'tampered' if row.sample.tampered else 'authentic'})")
        assert f"score {truth.score:.3f}" in text
        assert f"threshold {truth.threshold:.3f}" in text
        assert ("not flagged" in text) is (truth.score < truth.threshold)
        top = gallery.row_top(index)
        drawn = picture[top : top + gallery.CAPTION]
        assert np.array_equal(drawn, np.asarray(gallery.strip(text))), "caption not drawn"
        expected_heat = np.asarray(heat.overlay(row.sample.plane, truth.heat))
        assert np.array_equal(_panel(picture, index, 2), expected_heat)


def test_mask_panel_outlines_the_truth_and_leaves_the_rest(rows, picture):
    for index, row in enumerate(rows):
        plain, marked = _panel(picture, index, 0), _panel(picture, index, 1)
        changed = np.any(plain != marked, axis=2)
        assert not (changed & ~row.sample.mask).any(), "outline outside the mask"
        assert changed.any() is row.sample.mask.any()
        assert (marked[changed] == gallery.GREEN).all()
    assert rows[0].sample.tampered
    assert not rows[1].sample.tampered


def test_a_row_is_the_same_in_a_shorter_gallery_and_on_a_rerun(rows):
    """Each row has its own seed: the figure's first rows do not depend on how many follow."""
    bases = [(p, m) for p, m, _ in data.phantom_planes(np.random.default_rng(7), "test", 2)]
    alone = gallery.make_rows(Detector(MODEL_DIR), bases, KINDS[:1], seed=11)[0]
    assert np.array_equal(alone.sample.plane, rows[0].sample.plane)
    assert np.array_equal(alone.sample.mask, rows[0].sample.mask)
    assert alone.screening.score == rows[0].screening.score
    other = gallery.make_rows(Detector(MODEL_DIR), bases, KINDS[:1], seed=12)[0]
    assert not np.array_equal(other.sample.plane, rows[0].sample.plane)


def test_bases_are_the_first_of_each_modality_real_and_phantom_alternating():
    planes = [np.full((2, 2), v, np.float32) for v in range(6)]
    check = [
        (planes[0], "CT"), (planes[1], "CT"), (planes[2], "MR"),
        (planes[3], "PH-CT"), (planes[4], "PH-CT"), (planes[5], "PH-US"),
    ]  # fmt: skip
    picked = gallery.pick_bases(check)
    assert [m for _, m in picked] == ["CT", "PH-CT", "MR", "PH-US"]
    assert [float(p[0, 0]) for p, _ in picked] == [0.0, 3.0, 2.0, 5.0]


def test_outcome_follows_the_threshold_as_screening_does(rows):
    """At exactly the threshold a plane is flagged (score >= threshold), as in Screening."""
    row = rows[1]
    at = gallery.Row(row.sample, _with_score(row.screening, row.screening.threshold))
    below = gallery.Row(row.sample, _with_score(row.screening, row.screening.threshold - 1e-4))
    assert gallery.caption(at).endswith("| flagged (FALSE ALARM)")
    assert gallery.caption(below).endswith("| not flagged (correct)")


def _with_score(screening, score):
    return replace(screening, score=score)
