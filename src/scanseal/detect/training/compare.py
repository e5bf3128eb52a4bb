"""Measure exported models on the run's *validation* set: ``python -m
scanseal.detect.training.compare MODEL_DIR...``.

This is how a retrained model is judged against the committed one before it replaces it:
validation only (the test split is never used to choose), each model at its own card's
temperature and threshold. Prints one JSON line per model directory.

``--promote CANDIDATE`` (what ``make train`` runs) measures the candidate and the shipped model
(src/scanseal/detect/model) and, only when the candidate is better (:func:`better`), copies
its two files over the shipped ones and rewrites docs/MODEL.md's tables from the run's metrics.
Otherwise the shipped model and its card stay as they are, and the command says why.

``--split test`` measures the given models on the run's test set instead, to *report* how they
compare on held-out data once the gate has decided; promotion never looks at it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np

from scanseal.detect import MODEL_DIR
from scanseal.detect.training import report, synth
from scanseal.detect.training.evaluation import evaluate, onnx_predict
from scanseal.detect.training.sets import PHANTOMS, held_out

KEYS = ("accuracy", "auc", "detection_at_1pct_fa", "loc_f1", "false_alarm_rate")


def better(candidate: dict[str, Any], shipped: dict[str, Any]) -> bool:
    """A candidate replaces the shipped model when its validation AUC is higher and its
    validation accuracy is not lower: AUC judges the scores at every threshold, accuracy the
    calibrated threshold the screen actually uses."""
    return bool(candidate["auc"] > shipped["auc"] and candidate["accuracy"] >= shipped["accuracy"])


def card_scores(
    model_dir: Path, samples: list[synth.Sample]
) -> tuple[np.ndarray[Any, Any], list[Any], dict[str, Any]]:
    """An exported model's scores for ``samples`` at its own card's temperature, its maps, and
    the card (whose threshold the scores are judged at)."""
    card = json.loads((model_dir / "detector.json").read_text())
    scores, maps = onnx_predict(model_dir, samples)
    return scores, maps, card


def measure(
    model_dirs: list[Path], seed: int, phantoms: int, split: Literal["val", "test"] = "val"
) -> list[dict[str, Any]]:
    """Each model's metrics on the split (KEYS overall and for real and phantom images apart,
    and the false alarms per benign change), one JSON line printed per model."""
    samples, _ = held_out(seed, split, phantoms)
    lines = []
    for model_dir in model_dirs:
        scores, maps, card = card_scores(model_dir, samples)
        measured = evaluate(samples, scores, maps, card["threshold"])
        line = {"model": str(model_dir), "version": card["version"], "split": split}
        line["samples"] = len(samples)
        line |= {key: round(measured["overall"][key], 4) for key in KEYS}
        line["false_alarms_by_change"] = {k: round(v, 4) for k, v in measured["benign"].items()}
        line["sources"] = {
            name: {key: round(group[key], 4) for key in KEYS}
            for name, group in measured["sources"].items()
        }
        print(json.dumps(line), flush=True)
        lines.append(line)
    return lines


def promote(candidate: Path, metrics: Path, card: Path, seed: int, phantoms: int) -> bool:
    """Replace the shipped model by ``candidate`` if it is better on validation; True if so."""
    shipped_line, candidate_line = measure([MODEL_DIR, candidate], seed, phantoms)
    if not better(candidate_line, shipped_line):
        print(
            f"kept the shipped model {shipped_line['version']}: the candidate's validation AUC "
            f"{candidate_line['auc']} and accuracy {candidate_line['accuracy']} do not beat "
            f"{shipped_line['auc']} and {shipped_line['accuracy']}",
            flush=True,
        )
        return False
    for name in ("detector.onnx", "detector.json"):
        shutil.copyfile(candidate / name, MODEL_DIR / name)
    report.main(["--metrics", str(metrics), "--card", str(card)])
    print(f"shipped {candidate_line['version']} and rewrote {card}", flush=True)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="*", type=Path)
    parser.add_argument("--promote", type=Path, help="a retrained model directory")
    parser.add_argument("--metrics", type=Path, default=Path("bench/out/detect-train/metrics.json"))
    parser.add_argument("--card", type=Path, default=Path("docs/MODEL.md"))
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--phantoms", type=int, default=PHANTOMS, help="as in the training run")
    parser.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="test: to report how models compare on held-out data (the gate uses val only)",
    )
    args = parser.parse_args(argv)
    if args.promote is not None:
        promote(args.promote, args.metrics, args.card, args.seed, args.phantoms)
    elif args.model_dirs:
        measure(args.model_dirs, args.seed, args.phantoms, args.split)
    else:
        parser.error("give model directories to measure, or --promote CANDIDATE")


if __name__ == "__main__":
    main()
