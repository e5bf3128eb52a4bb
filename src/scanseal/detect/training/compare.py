"""Measure exported models on the run's *validation* set: ``python -m
scanseal.detect.training.compare MODEL_DIR...``.

This is how a retrained model is judged against the committed one before it replaces it:
validation only (the test split is never used to choose), each model at its own card's
temperature and threshold. Prints one JSON line per model directory.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from scanseal.detect import synth
from scanseal.detect.training.train import _bases, _sigmoid, evaluate, onnx_predict

KEYS = ("accuracy", "auc", "detection_at_1pct_fa", "loc_f1", "false_alarm_rate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--phantoms", type=int, default=480, help="as in the training run")
    args = parser.parse_args(argv)
    bases = _bases(args.seed, "val", args.phantoms // 8)
    val = synth.balanced_set(np.random.default_rng([args.seed, 2]), bases)
    for model_dir in args.model_dirs:
        card = json.loads((model_dir / "detector.json").read_text())
        logits, maps = onnx_predict(model_dir / "detector.onnx", val)
        scores = _sigmoid(logits / card["temperature"])
        overall = evaluate(val, scores, maps, card["threshold"])["overall"]
        line = {"model": str(model_dir), "version": card["version"], "val_samples": len(val)}
        print(json.dumps(line | {k: round(overall[k], 4) for k in KEYS}), flush=True)


if __name__ == "__main__":
    main()
