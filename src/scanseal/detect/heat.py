"""From the model's coarse localisation map to pixel masks, boxes and an overlay image.

The map comes out at a fraction of the input resolution (56×56 for 224×224); it is upsampled
bilinearly, thresholded, and its connected regions become ``[x, y, w, h]`` boxes in the
original image's pixel coordinates.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from PIL import Image

Heat = np.ndarray[Any, np.dtype[np.float32]]
Box = tuple[int, int, int, int]


def upsample(heat: Heat, rows: int, cols: int) -> Heat:
    """Bilinear resize of a probability map to (rows, cols)."""
    image = Image.fromarray(np.asarray(heat, np.float32))
    return np.asarray(image.resize((cols, rows), Image.Resampling.BILINEAR), dtype=np.float32)


def mask_of(heat: Heat, size: int, level: float = 0.5) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The predicted manipulated pixels at the detector's input size."""
    return upsample(heat, size, size) >= level


def regions(
    heat: Heat, rows: int, cols: int, *, level: float = 0.5, min_cells: int = 2
) -> list[Box]:
    """Bounding boxes of the connected map cells at or above ``level``, scaled to (rows, cols).

    Components smaller than ``min_cells`` map cells are dropped as speckle. Boxes are sorted by
    their peak probability, strongest first.
    """
    hot = np.asarray(heat) >= level
    seen = np.zeros_like(hot)
    found: list[tuple[float, Box]] = []
    scale_y, scale_x = rows / hot.shape[0], cols / hot.shape[1]
    for start in zip(*np.nonzero(hot), strict=True):
        if seen[start]:
            continue
        cells = _component(hot, seen, (int(start[0]), int(start[1])))
        if len(cells) < min_cells:
            continue
        ys, xs = zip(*cells, strict=True)
        peak = float(max(heat[y, x] for y, x in cells))
        x0, y0 = int(min(xs) * scale_x), int(min(ys) * scale_y)
        x1, y1 = int(np.ceil((max(xs) + 1) * scale_x)), int(np.ceil((max(ys) + 1) * scale_y))
        found.append((peak, (x0, y0, min(x1, cols) - x0, min(y1, rows) - y0)))
    return [box for _, box in sorted(found, key=lambda item: -item[0])]


def _component(
    hot: np.ndarray[Any, Any], seen: np.ndarray[Any, Any], start: tuple[int, int]
) -> list[tuple[int, int]]:
    """4-connected flood fill from ``start``; marks the cells it visits."""
    queue, cells = deque([start]), []
    seen[start] = True
    while queue:
        y, x = queue.popleft()
        cells.append((y, x))
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            inside = 0 <= ny < hot.shape[0] and 0 <= nx < hot.shape[1]
            if inside and hot[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                queue.append((ny, nx))
    return cells


def overlay(plane: np.ndarray[Any, Any], heat: Heat) -> Image.Image:
    """The grey input with the probability map blended in red (opaque where certain)."""
    gray = np.clip(np.asarray(plane, np.float32), 0, 1)
    rows, cols = gray.shape
    alpha = upsample(heat, rows, cols)[..., None] * 0.6
    base = np.repeat(gray[..., None], 3, axis=2)
    red = np.zeros_like(base)
    red[..., 0] = 1.0
    blended = base * (1 - alpha) + red * alpha
    return Image.fromarray((blended * 255 + 0.5).astype(np.uint8), mode="RGB")
