"""Out-of-fold scores of cross-validated recipes against a model's scores on the same samples.

Reads ``crossval.json`` of each ``--crossval DIR`` (its headline ``scores``) and a
``unseen.json`` of ``python -m scanseal.detect.training.unseen`` (``--baseline``; the same
seed, so the same samples in the same order), and prints AUC, detection at 1 % false alarms
and, for AUC, the difference to the baseline with a 95 % interval from a paired bootstrap over
base images (the twelve samples of an image are drawn together: they are not independent).

    python bench/detect_crossval_compare.py --baseline bench/out/detect-unseen/unseen.json \\
        --crossval bench/out/cv-C [--crossval ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from scanseal.detect.training import attacks, metrics
from scanseal.detect.training.crossval_data import FOLDS


def _scores(rows: list[dict[str, Any]]) -> tuple[np.ndarray[Any, Any], ...]:
    labels = np.array([r["kind"] in attacks.FAMILIES for r in rows])
    scores = np.array([r["score"] for r in rows], np.float64)
    images = np.unique([r["path"] for r in rows], return_inverse=True)[1]
    return labels, scores, images


def paired_auc(
    labels: Any, ours: Any, theirs: Any, images: Any, draws: int = 1000
) -> tuple[float, float, float]:
    """AUC difference (ours − theirs) and its 2.5 % and 97.5 % bootstrap quantiles."""
    rng = np.random.default_rng(0)
    images = np.unique(images, return_inverse=True)[1]
    groups = [np.nonzero(images == i)[0] for i in range(images.max() + 1)]
    deltas = []
    for _ in range(draws):
        rows = np.concatenate([groups[i] for i in rng.integers(len(groups), size=len(groups))])
        deltas.append(
            metrics.auc(labels[rows], ours[rows]) - metrics.auc(labels[rows], theirs[rows])
        )
    delta = metrics.auc(labels, ours) - metrics.auc(labels, theirs)
    low, high = np.quantile(deltas, [0.025, 0.975])
    return delta, float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--crossval", type=Path, action="append", default=[])
    args = parser.parse_args()
    base_rows = json.loads(args.baseline.read_text())["scores"]
    print("| scorer | samples | AUC | det. @1% FA | AUC − baseline (95 % interval) |")
    print("|---|---|---|---|---|")
    labels, base, images = _scores(base_rows)
    print(f"| {args.baseline} | {len(base)} | {metrics.auc(labels, base):.3f} | "
          f"{metrics.detection_at_false_alarm(labels, base):.1%} | – |")  # fmt: skip
    for directory in args.crossval:
        rows = json.loads((directory / "crossval.json").read_text())["scores"]
        keep = {(r["path"], r["kind"]) for r in rows}
        subset = [i for i, r in enumerate(base_rows) if (r["path"], r["kind"]) in keep]
        if [(base_rows[i]["path"], base_rows[i]["kind"]) for i in subset] != [
            (r["path"], r["kind"]) for r in rows
        ]:
            raise SystemExit(f"{directory}: samples differ from the baseline's")
        ours = _scores(rows)[1]
        delta, low, high = paired_auc(labels[subset], ours, base[subset], images[subset])
        print(f"| {directory} | {len(ours)} | {metrics.auc(labels[subset], ours):.3f} | "
              f"{metrics.detection_at_false_alarm(labels[subset], ours):.1%} | "
              f"{delta:+.3f} ({low:+.3f} to {high:+.3f}) |")  # fmt: skip
        for fold, held in enumerate(FOLDS):
            rows_in = np.array([r["source"] in held for r in rows])
            if rows_in.any():
                mine, theirs = ours[rows_in], base[subset][rows_in]
                truth = labels[subset][rows_in]
                print(f"|   fold {fold} {'+'.join(held)} | {int(rows_in.sum())} | "
                      f"{metrics.auc(truth, mine):.3f} "
                      f"(model 1.6: {metrics.auc(truth, theirs):.3f}) "
                      f"| {metrics.detection_at_false_alarm(truth, mine):.1%} (model 1.6: "
                      f"{metrics.detection_at_false_alarm(truth, theirs):.1%}) | |")  # fmt: skip


if __name__ == "__main__":
    main()
