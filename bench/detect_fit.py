"""How well the shipped detector fits the images it was trained on, against held-out ones.

    .venv-train/bin/python bench/detect_fit.py [--model-dir DIR] [--images 80]

Needs the ``train`` extra (the data builders live with the training code). Scores the ONNX
model, at its own card's temperature and threshold, on three sets built as `make train` builds
them (default seed): fresh tampering of ``--images`` training-split images (images it saw, with
manipulations it did not), the first ``--images`` pairs of the training pool itself (exactly
what it was trained on), and the validation set. Training and held-out figures close together
with both low means the network underfits (capacity or recipe); training figures far above
held-out ones mean it learnt the training images rather than the manipulations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scanseal.detect import MODEL_DIR  # noqa: E402
from scanseal.detect.training import compare, evaluation, sets, synth  # noqa: E402


def measure(model_dir: Path, samples: list[synth.Sample]) -> dict[str, float]:
    scores, maps, card = compare.card_scores(model_dir, samples)
    overall = evaluation.evaluate(samples, scores, maps, card["threshold"])["overall"]
    keys = ("accuracy", "recall", "false_alarm_rate", "auc", "detection_at_1pct_fa", "loc_f1")
    return {key: round(float(overall[key]), 4) for key in keys}


def pool_samples(pool: sets.Pool, pairs: int) -> list[synth.Sample]:
    return [
        synth.Sample(
            pool.planes[row].astype(np.float32),
            pool.masks[row],
            bool(row % 2),
            str(pool.families[row]),
            "pool",
        )
        for row in range(2 * pairs)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--images", type=int, default=80, help="training images and pool pairs")
    parser.add_argument("--seed", type=int, default=20261124, help="make train's seed")
    args = parser.parse_args(argv)
    bases = sets.base_images(args.seed, "train", sets.PHANTOMS)
    chosen = np.random.default_rng([args.seed, 99]).choice(len(bases), args.images, replace=False)
    groups: dict[str, list[synth.Sample]] = {
        "training images, fresh tampering": synth.balanced_set(
            np.random.default_rng([args.seed, 98]), [bases[i] for i in chosen]
        ),
        "training pool (as trained)": pool_samples(
            sets.build_pool(args.seed, bases, 2 * args.images), args.images
        ),
        "validation": sets.held_out(args.seed, "val")[0],
    }
    print("| set | samples | accuracy | recall | false alarms | AUC | det. @1% FA | loc. F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, samples in groups.items():
        row = measure(args.model_dir, samples)
        print(
            f"| {name} | {len(samples)} | {row['accuracy']:.1%} | {row['recall']:.1%} "
            f"| {row['false_alarm_rate']:.1%} | {row['auc']:.3f} "
            f"| {row['detection_at_1pct_fa']:.1%} | {row['loc_f1']:.3f} |"
        )


if __name__ == "__main__":
    main()
