"""Heat map to boxes and overlays."""

from __future__ import annotations

import numpy as np

from scanseal.detect import heat


def test_regions_are_scaled_boxes_strongest_first():
    grid = np.zeros((56, 56), np.float32)
    grid[10:14, 20:30] = 0.7
    grid[40:50, 5:8] = 0.95
    grid[0, 0] = 0.99  # a single cell is speckle, dropped
    boxes = heat.regions(grid, 512, 448)
    assert len(boxes) == 2
    x, y, w, h = boxes[0]
    assert (x, y) == (40, 365)
    assert (w, h) == (24, 93)
    assert boxes[1] == (160, 91, 80, 37)


def test_no_region_below_level():
    assert heat.regions(np.full((56, 56), 0.49, np.float32), 224, 224) == []


def test_overlay_is_rgb_at_input_size():
    image = heat.overlay(np.full((224, 224), 0.5, np.float32), np.ones((56, 56), np.float32))
    assert image.size == (224, 224)
    assert image.mode == "RGB"
    red, green, _ = image.getpixel((100, 100))
    assert red > green


def _verdict(score: float) -> heat.Verdict:
    return heat.Verdict(score=score, threshold=0.5, level=0.5, model_version="detector-test")


def _hot_corner() -> np.ndarray:
    """A map that is hot in its bottom-right eighth only."""
    grid = np.zeros((56, 56), np.float32)
    grid[42:54, 42:54] = 0.95
    return grid


def test_draw_keeps_the_image_size_and_aspect():
    image = np.linspace(0, 1, 300 * 484, dtype=np.float32).reshape(300, 484)
    for rows, cols in ((300, 484), (64, 64), (37, 5), (1, 1)):
        drawn = heat.draw(image[:rows, :cols], _hot_corner(), [], _verdict(0.2))
        assert drawn.size == (cols, rows)
        assert drawn.mode == "RGB"


def test_draw_outlines_each_box_and_tints_the_heat():
    image = np.full((300, 484), 0.4, np.float32)
    boxes = heat.regions(_hot_corner(), 300, 484)
    assert len(boxes) == 1
    drawn = np.asarray(heat.draw(image, _hot_corner(), boxes, _verdict(0.9)))
    x, y, w, h = boxes[0]
    assert tuple(drawn[y, x + w // 2]) == heat.BOX_RGB  # top edge
    assert tuple(drawn[y + h - 1, x + w // 2]) == heat.BOX_RGB  # bottom edge
    red, green, blue = drawn[y + h // 2, x + w // 2].astype(int)
    assert red > green + 80
    assert green == blue
    plain = round(0.4 * 255)
    assert tuple(drawn[150, 100]) == (plain, plain, plain)  # no heat, no legend: untouched


def test_legend_states_the_verdict_where_the_heat_is_not():
    """The legend goes to the corner without heat (top-left here): darker than the plain image,
    with coloured verdict text (red when flagged, green when not) on the grey."""
    image = np.full((300, 484), 0.6, np.float32)
    for score, colour in ((0.9, heat.TAMPERED_RGB), (0.1, heat.OK_RGB)):
        drawn = np.asarray(heat.draw(image, _hot_corner(), [], _verdict(score)))
        corner = drawn[:40, :200].astype(int)
        assert corner.mean() < 0.6 * 255 - 40
        close = np.abs(corner - np.array(colour)).max(axis=2) <= 12
        assert close.sum() >= 10
        assert tuple(drawn[150, 100]) == (153, 153, 153)


def test_verdict_lines_name_score_threshold_and_box_key():
    flagged, clean = _verdict(0.734).lines(boxes=2), _verdict(0.1).lines(boxes=0)
    assert flagged[0] == "TAMPERED  score 0.734 >= threshold 0.500"
    assert clean[0] == "ok  score 0.100 < threshold 0.500"
    assert flagged[2] == "box: region at heat >= 0.5"
    assert _verdict(0.9).lines(boxes=0)[2] == "no region reached heat 0.5"
    assert flagged[3] == "model detector-test"
    assert _verdict(0.1).short() == "ok 0.10 < 0.50"
