"""A picture gallery of what the tamper detector sees, for docs/MODEL.md.

    python bench/detect_gallery.py [--seed 4242] [--out docs/img/model/gallery.png]

One row per tamper family (7) and two benign rows (``original`` and ``jpeg``); per row three
224×224 panels: the plane exactly as the model gets it, the same with the ground-truth mask
outlined in green, and the model's heat map over it (``heat.overlay``), under a caption with
family, modality, calibrated score, threshold and verdict, as ``scanseal screen`` reports them.

The samples are chosen by a fixed rule, never by score: the base images are the first image of
each modality in the held-out check set (``data.check_set``, test split only), real and phantom
alternating; row ``i`` applies kind ``i`` to base ``i`` with ``numpy.random.default_rng([seed,
i])``, and the donor of a splice is the next base, as in ``synth.balanced_set``. Hits and misses
are shown as they fall. Runtime dependencies only (numpy, Pillow, onnxruntime): no torch.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scanseal.detect import Detector, Screening, default_detector, heat  # noqa: E402
from scanseal.detect.training import data, synth  # noqa: E402

KINDS: Final[tuple[str, ...]] = (*synth.FAMILIES, "original", "jpeg")
"""The rows: every tamper family, then an untouched and a JPEG-re-saved authentic image."""

DEFAULT_SEED: Final = 4242
DEFAULT_OUT: Final = ROOT / "docs" / "img" / "model" / "gallery.png"
PANEL: Final = synth.SIZE
GAP: Final = 4
CAPTION: Final = 16
HEADER: Final = 34
COLUMNS: Final = (
    "as given to the model",
    "ground-truth mask (green outline)",
    "model heat map (red = tampered)",
)
WIDTH: Final = 3 * PANEL + 4 * GAP
GREEN: Final = np.array([0, 230, 0], np.uint8)
INK: Final = (0, 0, 0)
PAPER: Final = (255, 255, 255)
Base = tuple[synth.Plane, str]


@dataclass(frozen=True)
class Row:
    """One gallery row: the labelled sample and the detector's verdict on its plane."""

    sample: synth.Sample
    screening: Screening


def pick_bases(check: list[Base]) -> list[Base]:
    """The first image of each modality, real and phantom alternating (real first).

    One per modality shows the spread of inputs; alternating keeps phantoms from filling the
    top of the figure. The order is the check set's, so the choice never looks at a score.
    """
    first: dict[str, synth.Plane] = {}
    for plane, modality in check:
        first.setdefault(modality, plane)
    real = [(p, m) for m, p in first.items() if m not in synth.PHANTOM_STYLES]
    phantoms = [(p, m) for m, p in first.items() if m in synth.PHANTOM_STYLES]
    mixed: list[Base] = []
    for index in range(max(len(real), len(phantoms))):
        mixed.extend(group[index] for group in (real, phantoms) if index < len(group))
    return mixed


def make_rows(
    detector: Detector, bases: list[Base], kinds: tuple[str, ...], seed: int
) -> list[Row]:
    """Row ``i``: kind ``i`` applied to base ``i`` (cycling), seeded by ``(seed, i)`` alone.

    A row's own seed keeps it the same whether the gallery has two rows or nine.
    """
    rows = []
    for index, kind in enumerate(kinds):
        plane, modality = bases[index % len(bases)]
        donor = bases[(index + 1) % len(bases)][0]
        rng = np.random.default_rng([seed, index])
        sample = synth.make_sample(rng, plane, donor, modality, kind)
        rows.append(Row(sample, detector.screen_plane(sample.plane)))
    return rows


def outcome(row: Row) -> str:
    """Hit, miss, false alarm or correct: the verdict against the ground truth."""
    if row.sample.tampered:
        return "hit" if row.screening.tampered else "MISS"
    return "FALSE ALARM" if row.screening.tampered else "correct"


def caption(row: Row) -> str:
    """The row's caption: what ``scanseal screen`` would say about this plane, and the truth."""
    sample, screening = row.sample, row.screening
    kind = "tampered" if sample.tampered else "authentic"
    source = "phantom" if sample.modality in synth.PHANTOM_STYLES else "real"
    verdict = "flagged" if screening.tampered else "not flagged"
    return (
        f"{sample.family} ({kind}) | {sample.modality} ({source}) | "
        f"score {screening.score:.3f} | threshold {screening.threshold:.3f} | "
        f"{verdict} ({outcome(row)})"
    )


def gray(plane: synth.Plane) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The plane as 8-bit RGB, rounded the way ``heat.overlay`` rounds."""
    values = (np.clip(plane, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(values[..., None], 3, axis=2)


def outline(mask: synth.Mask) -> synth.Mask:
    """The mask's inner border: mask pixels with a 4-neighbour outside it (or at the edge)."""
    padded = np.pad(mask, 1)
    inner = (
        padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
        & padded[1:-1, :-2] & padded[1:-1, 2:]
    )  # fmt: skip
    return np.asarray(mask & ~inner, dtype=np.bool_)


def panels(row: Row) -> list[Image.Image]:
    """The three panels of a row, each PANEL×PANEL."""
    plain = gray(row.sample.plane)
    marked = plain.copy()
    marked[outline(row.sample.mask)] = GREEN
    return [
        Image.fromarray(plain, mode="RGB"),
        Image.fromarray(marked, mode="RGB"),
        heat.overlay(row.sample.plane, row.screening.heat),
    ]


def strip(text: str, width: int = WIDTH, height: int = CAPTION) -> Image.Image:
    """A caption strip: ``text`` in Pillow's default font, black on white."""
    image = Image.new("RGB", (width, height), PAPER)
    ImageDraw.Draw(image).text((GAP, 2), text, fill=INK, font=ImageFont.load_default())
    return image


def row_top(index: int) -> int:
    """The y of row ``index``'s caption strip; its panels start CAPTION pixels lower."""
    return HEADER + index * (CAPTION + PANEL + GAP)


def panel_left(column: int) -> int:
    """The x of panel ``column`` (0, 1 or 2)."""
    return GAP + column * (PANEL + GAP)


def render(rows: list[Row], title: str) -> Image.Image:
    """The gallery: a title and column names, then per row a caption and three panels."""
    image = Image.new("RGB", (WIDTH, row_top(len(rows))), PAPER)
    image.paste(strip(title), (0, 0))
    for column, name in enumerate(COLUMNS):
        image.paste(strip(name, PANEL, CAPTION), (panel_left(column) - GAP, HEADER - CAPTION))
    for index, row in enumerate(rows):
        top = row_top(index)
        image.paste(strip(caption(row)), (0, top))
        for column, panel in enumerate(panels(row)):
            image.paste(panel, (panel_left(column), top + CAPTION))
    return image


def title(detector: Detector, seed: int) -> str:
    """The figure's first line: which model, which seed, and that the rows are not picked."""
    return (
        f"{detector.version}, held-out test-split bases (one per modality), seed {seed}; "
        "rows by a fixed rule, not by score"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    detector = default_detector()
    bases = pick_bases(data.check_set(seed=args.seed))
    rows = make_rows(detector, bases, KINDS, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    render(rows, title(detector, args.seed)).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB, {len(rows)} rows)")
    for row in rows:
        print(f"  {caption(row)}")


if __name__ == "__main__":
    main()
