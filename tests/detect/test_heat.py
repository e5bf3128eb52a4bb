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
