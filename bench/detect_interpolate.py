"""Weight interpolation of fine-tuned fold models with their starting model, cross-validated.

For each fold model of a ``crossval --init`` run (``DIR/fold<k>.pt``), the network whose
weights are ``alpha`` × the fold model's + (1 − alpha) × the starting model's (batch norms were
fixed in fine-tuning, so the two share them) scores that fold's held-out samples; the results
go to ``OUT/alpha<a>/fold<k>.npz`` in the cross-validation's format, so

    .venv-train/bin/python bench/detect_interpolate.py --crossval DIR --init ONNX --alpha 0.5 \
        --out OUT
    .venv-train/bin/python -m scanseal.detect.training.crossval --out OUT/alpha0.5 --summary-only \
        --interpolate 0.5 (and the run's other options, for the recipe it records)

gives the out-of-fold figures of the interpolated models (one ``OUT/alpha<a>`` per ``--alpha``);
``scanseal.detect.training.ship`` trains such a recipe and interpolates the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from scanseal.detect.training import crossval, crossval_data, unseen, warmstart
from scanseal.detect.training.nets import Proposed


def blend(start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float) -> Proposed:
    """The network of weights ``alpha`` × ``tuned`` + (1 − ``alpha``) × ``start``."""
    mixed = {
        k: (alpha * tuned[k] + (1 - alpha) * v) if v.is_floating_point() else tuned[k]
        for k, v in start.items()
    }
    model = Proposed()
    model.load_state_dict(mixed)
    model.eval()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossval", type=Path, required=True)
    parser.add_argument("--init", type=Path, required=True, help="the starting ONNX model")
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.5])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = warmstart.proposed_from_onnx(args.init)
    cases = crossval._cases(unseen.base_planes())
    for fold, held in enumerate(crossval_data.FOLDS):
        path = args.crossval / f"fold{fold}.pt"
        if not path.exists():
            continue
        tuned = torch.load(path)
        saved = dict(np.load(args.crossval / f"fold{fold}.npz"))
        for alpha in args.alpha:
            model = blend(start, tuned, alpha)
            for name, rows in cases.items():
                keep = [c for c in rows if c.source in held]
                saved[f"{name}_logits"], saved[f"{name}_maps"] = crossval._score(model, keep)
            out = args.out / f"alpha{alpha:g}"
            out.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(out / f"fold{fold}.npz", **saved)
            print(f"fold {fold} {held}, alpha {alpha:g}: scored", flush=True)


if __name__ == "__main__":
    main()
