"""Which manipulations the shipped detector misses: recall on the held-out test split by the
size of the edited region and by the strength of the edit.

    .venv-train/bin/python bench/detect_misses.py [--model-dir DIR]

Needs the ``train`` extra (the data builders live with the training code). Rebuilds the test
split exactly as `make train` does (default seed), scores it with the ONNX model at its card's
temperature and threshold, and sorts the tampered images into bins. *Area* is the ground-truth
mask in pixels at 224×224. *Strength* is how far the edit moved the pixels inside the mask above
what the rest of the image moved (a global re-save also moves every pixel), in units of the base
image's own noise: ``(mean |Δ| inside - median |Δ| outside) / noise``. Small, weak edits that
are missed are the expected failure; large, strong ones that are missed are the model's fault.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scanseal.detect import MODEL_DIR  # noqa: E402
from scanseal.detect.training import compare, sets, synth  # noqa: E402

AREA_EDGES = (0, 400, 1000, 2000, np.inf)
"""Mask area bins in pixels; a blob of radius r covers about 3.1 r² (r is 6-30 pixels)."""

STRENGTH_EDGES = (-np.inf, 2.0, 5.0, 10.0, np.inf)
"""Edit strength bins in noise units."""


def strength(sample: synth.Sample, base: synth.Plane) -> float:
    """How much the edit moved the masked pixels beyond the image-wide change, in noise units."""
    change = np.abs(sample.plane - base)
    noise = max(synth._noise_level(base), 1.0 / 255)  # 8-bit step as the floor
    inside, outside = float(change[sample.mask].mean()), float(np.median(change[~sample.mask]))
    return (inside - outside) / noise


def _bin(value: float, edges: tuple[float, ...]) -> int:
    return int(np.searchsorted(edges, value, side="right")) - 1


def _label(edges: tuple[float, ...], index: int, unit: str) -> str:
    low, high = edges[index], edges[index + 1]
    if not np.isfinite(low):
        return f"< {high:g} {unit}"
    if not np.isfinite(high):
        return f"≥ {low:g} {unit}"
    return f"{low:g}-{high:g} {unit}"


def table(rows: list[dict[str, Any]], key: str, edges: tuple[float, ...], unit: str) -> str:
    """A markdown table: recall per family (columns) and bin (rows), n in brackets."""
    families = list(synth.FAMILIES)
    lines = [
        f"| {key} | all | " + " | ".join(families) + " |",
        "|---|---|" + "---|" * len(families),
    ]
    for index in range(len(edges) - 1):
        chosen = [row for row in rows if _bin(row[key], edges) == index]
        cells = [_recall(chosen)]
        cells += [_recall([row for row in chosen if row["family"] == f]) for f in families]
        lines.append(f"| {_label(edges, index, unit)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def strong_by_modality(rows: list[dict[str, Any]], floor: float = 10.0) -> str:
    """A markdown table: recall on the edits of at least ``floor`` noise levels, per modality."""
    strong = [row for row in rows if row["strength"] >= floor]
    modalities = sorted({row["modality"] for row in strong})
    cells = [_recall([row for row in strong if row["modality"] == m]) for m in modalities]
    return "\n".join([
        f"| edits ≥ {floor:g} × noise | " + " | ".join(modalities) + " |",
        "|---|" + "---|" * len(modalities),
        "| recall (n) | " + " | ".join(cells) + " |",
    ])  # fmt: skip


def _recall(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "–"
    found = sum(row["detected"] for row in rows)
    return f"{found / len(rows):.0%} ({len(rows)})"


def measure(model_dir: Path, seed: int) -> list[dict[str, Any]]:
    """One row per tampered test image: family, modality, area, strength, detected."""
    test, bases = sets.held_out(seed, "test")
    scores, _, card = compare.card_scores(model_dir, test)
    per_base = len(synth.FAMILIES) + len(synth.BENIGN)
    rows = []
    for index, sample in enumerate(test):
        if sample.tampered:
            base = bases[index // per_base][0]
            rows.append({
                "family": sample.family, "modality": sample.modality,
                "area": int(sample.mask.sum()), "strength": strength(sample, base),
                "detected": bool(scores[index] >= card["threshold"]),
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--seed", type=int, default=20261124, help="make train's seed")
    args = parser.parse_args(argv)
    rows = measure(args.model_dir, args.seed)
    print(f"{len(rows)} tampered test images, recall {_recall(rows)}\n")
    print(table(rows, "area", AREA_EDGES, "px") + "\n")
    print(table(rows, "strength", STRENGTH_EDGES, "× noise") + "\n")
    print(strong_by_modality(rows))


if __name__ == "__main__":
    main()
