"""From the model's coarse localisation map to pixel masks, boxes and the pictures people read.

The map comes out at a fraction of the input resolution (56×56 for 224×224); it is upsampled
bilinearly, thresholded, and its connected regions become ``[x, y, w, h]`` boxes in the
original image's pixel coordinates. :func:`draw` puts it on the image at the image's own size
with the boxes and a legend (``scanseal screen --heatmap``); :func:`overlay` blends it on the
model's 224×224 input (the gallery of docs/MODEL.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Heat = np.ndarray[Any, np.dtype[np.float32]]
Box = tuple[int, int, int, int]

HEAT_RGB: Final = (255, 0, 0)
HEAT_OPACITY: Final = 0.6
"""The map is red, opaque to 60 % where the model is certain, so the anatomy stays visible."""
BOX_RGB: Final = (255, 214, 0)
TAMPERED_RGB: Final = (255, 96, 96)
OK_RGB: Final = (120, 230, 120)
TEXT_RGB: Final = (235, 235, 235)
MIN_FONT: Final = 8


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
    return _blend(gray, upsample(heat, *gray.shape))


def _blend(gray: np.ndarray[Any, Any], probability: np.ndarray[Any, Any]) -> Image.Image:
    """Red over grey with opacity ``HEAT_OPACITY`` × probability (both arrays in [0, 1])."""
    alpha = np.clip(probability, 0, 1)[..., None] * HEAT_OPACITY
    base = np.repeat(np.asarray(gray, np.float32)[..., None], 3, axis=2)
    blended = base * (1 - alpha) + np.array(HEAT_RGB, np.float32) / 255 * alpha
    return Image.fromarray((blended * 255 + 0.5).astype(np.uint8), mode="RGB")


@dataclass(frozen=True)
class Verdict:
    """What the legend of a drawn heat map states."""

    score: float
    threshold: float
    level: float
    model_version: str

    @property
    def tampered(self) -> bool:
        return self.score >= self.threshold

    def lines(self, boxes: int) -> list[str]:
        """The legend's text, most important first (small images keep the first lines)."""
        word, sign = ("TAMPERED", ">=") if self.tampered else ("ok", "<")
        if not self.tampered:
            key = f"box: region at heat >= {self.level:g}, when flagged"
        elif boxes:
            key = f"box: region at heat >= {self.level:g}"
        else:
            key = f"no region reached heat {self.level:g}"
        return [
            f"{word}  score {self.score:.3f} {sign} threshold {self.threshold:.3f}",
            "heat: tampering probability 0 to 1",
            key,
            f"model {self.model_version}",
        ]

    def short(self) -> str:
        """The verdict alone, for images too small for the legend."""
        word, sign = ("TAMPERED", ">=") if self.tampered else ("ok", "<")
        return f"{word} {self.score:.2f} {sign} {self.threshold:.2f}"


def draw(
    image: np.ndarray[Any, Any], heat: Heat, boxes: list[Box], verdict: Verdict
) -> Image.Image:
    """The heat map drawn on the image at the image's own size and aspect, for people to read.

    ``image`` is the grey frame in [0, 1] as a viewer shows it (rows, cols); the map is
    upsampled onto it, the region boxes (image pixel coordinates) are outlined, and a legend
    states the verdict, score and threshold, the colour scale and the box key. The legend sits
    in the corner that hides the least heat and loses its last lines on small images.
    """
    gray = np.clip(np.asarray(image, np.float32), 0, 1)
    rows, cols = gray.shape
    probability = upsample(heat, rows, cols)
    picture = _blend(gray, probability)
    pen = ImageDraw.Draw(picture)
    width = max(1, round(min(rows, cols) / 200))
    for x, y, w, h in boxes:
        pen.rectangle((x, y, x + max(w, 1) - 1, y + max(h, 1) - 1), outline=BOX_RGB, width=width)
    return _legend(picture, probability, verdict, len(boxes))


def _legend(picture: Image.Image, probability: Heat, verdict: Verdict, boxes: int) -> Image.Image:
    cols, rows = picture.size
    lines, size = _fit(verdict, boxes, cols, rows)
    font = ImageFont.load_default(size=size)
    pad, step = max(2, size // 3), round(size * 1.3)
    bar = 4 * size if len(lines) > 1 else 0  # the colour bar before the second line
    box_key = size if len(lines) > 2 else 0  # the box swatch before the third line
    text_width = max(font.getlength(line) + (bar if i == 1 else box_key if i == 2 else 0)
                     for i, line in enumerate(lines))  # fmt: skip
    panel = (int(text_width) + 2 * pad + size // 2, step * len(lines) + 2 * pad)
    x0, y0 = _quietest_corner(probability, panel)
    shade = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    ImageDraw.Draw(shade).rectangle((x0, y0, x0 + panel[0], y0 + panel[1]), fill=(0, 0, 0, 170))
    out = Image.alpha_composite(picture.convert("RGBA"), shade)
    pen = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        x, y = x0 + pad, y0 + pad + i * step
        colour = (TAMPERED_RGB if verdict.tampered else OK_RGB) if i == 0 else TEXT_RGB
        if i == 1:
            _colour_bar(out, (x, y + step // 8, bar - size // 2, max(2, size * 3 // 4)))
            x += bar
        elif i == 2:
            side = max(2, size * 3 // 4)
            pen.rectangle((x, y + step // 8, x + side, y + step // 8 + side), outline=BOX_RGB,
                          width=max(1, size // 8))  # fmt: skip
            x += box_key
        pen.text((x, y), line, fill=colour, font=font)
    return out.convert("RGB")


def _fit(verdict: Verdict, boxes: int, cols: int, rows: int) -> tuple[list[str], int]:
    """The legend lines and font size that fit in the image: about 1/30 of its width, the
    panel at most 95 % of the width and half the height. Lines are dropped from the end
    before the font goes below ``MIN_FONT``; a tiny image gets the short verdict only."""
    full = verdict.lines(boxes)
    start = max(MIN_FONT, min(48, round(min(cols, 1.4 * rows) / 30)))
    for lines in [full[:count] for count in range(len(full), 0, -1)]:
        for size in range(start, MIN_FONT - 1, -1):
            if _fits(lines, size, cols, rows):
                return lines, size
    short = [verdict.short()]
    size = next((n for n in range(MIN_FONT, 3, -1) if _fits(short, n, cols, rows)), 4)
    return short, size


def _fits(lines: list[str], size: int, cols: int, rows: int) -> bool:
    font = ImageFont.load_default(size=size)
    width = max(font.getlength(line) for line in lines) + (5 * size if len(lines) > 1 else size)
    return width <= 0.95 * cols and 1.3 * size * len(lines) + size <= 0.5 * rows


def _quietest_corner(probability: Heat, panel: tuple[int, int]) -> tuple[int, int]:
    """Top-left of the image corner where a panel of ``panel`` (w, h) covers the least heat."""
    rows, cols = probability.shape
    w, h = min(panel[0], cols - 1), min(panel[1], rows - 1)
    corners = [(0, 0), (cols - 1 - w, 0), (0, rows - 1 - h), (cols - 1 - w, rows - 1 - h)]
    return min(corners, key=lambda c: float(probability[c[1] : c[1] + h, c[0] : c[0] + w].sum()))


def _colour_bar(picture: Image.Image, where: tuple[int, int, int, int]) -> None:
    """The heat scale from probability 0 (plain grey) to 1, blended as the map is."""
    x, y, w, h = where
    ramp = np.linspace(0, 1, max(w, 1), dtype=np.float32)[None, :].repeat(max(h, 1), axis=0)
    picture.paste(_blend(np.full_like(ramp, 0.5), ramp).convert("RGBA"), (x, y))
