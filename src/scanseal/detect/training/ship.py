"""Train the shipped model by a cross-validated recipe and write its card.

:mod:`scanseal.detect.training.crossval` measured a recipe on sources its models never saw;
this trains the same recipe (same network, tampering, data rules and training time) once more
on every source (pydicom's test split excepted: the in-distribution test set and the unit
tests' check set stay held out), exports it to ONNX and writes ``detector.json``. The
threshold and temperature are the cross-validation's, chosen on out-of-fold authentic scores;
their held-out false-alarm figures are the cross-validation's leave-one-source-out ones. A
recipe whose held-out false alarms exceed ``falsealarm.BOUND`` is refused, nothing written.

    python -m scanseal.detect.training.ship --crossval bench/out/cv-X [--model-dir DIR]
        (training venv; make detect-ship)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scanseal.detect import MODEL_DIR
from scanseal.detect.training import (
    crossval_data,
    data,
    evaluation,
    falsealarm,
    synth,
    unseen,
    warmstart,
)
from scanseal.detect.training.crossval import initial
from scanseal.detect.training.train import EXPORTED_INTERFACE, Budget, export, log, train


def _card(recipe: dict[str, Any], cv: dict[str, Any], steps: int) -> dict[str, Any]:
    overall = cv["figures"]["overall"]
    return {
        "version": f"detector-1.7-{recipe['arch']}-seed{recipe['seed']}-steps{steps}",
        "threshold": round(float(cv["validation_threshold"]), 6),
        "temperature": round(float(cv["temperature"]), 6),
        "heat_level": 0.5,
        **EXPORTED_INTERFACE,
        "training": {"seed": recipe["seed"], "steps": steps, "architecture": recipe["arch"],
                     "tamper": recipe["tamper"], "minutes": recipe["minutes"],
                     "pairs": recipe["pairs"], "views": recipe["views"],
                     "phantoms": recipe["phantoms"], "fresh_pairs_per_step": recipe["fresh"],
                     "init": recipe["init"], "lr": recipe["lr"],
                     "interpolate": recipe.get("interpolate", 1.0),
                     "precision": recipe["precision"], "trained_on_sources": cv["sources"],
                     "held_out": "pydicom test split (scanseal-detect-split-12)"},
        "cross_validation": {"folds": cv["folds"], "steps": cv["steps"],
                             "auc": round(overall["auc"], 4),
                             "detection_at_1pct_fa": round(overall["detection_at_1pct_fa"], 4),
                             "loc_f1": round(overall["loc_f1"], 4)},
    }  # fmt: skip


def _check_floors(model_dir: Path, threshold: float) -> dict[str, float]:
    """AUC and localisation floors on the check set (2 points under what is measured)."""
    check = synth.balanced_set(np.random.default_rng(4242), data.check_set())
    scores, maps = evaluation.onnx_predict(model_dir, check)
    measured = evaluation.evaluate(check, scores, maps, threshold)["overall"]
    return {k: float(np.floor((measured[k] - 0.02) * 100) / 100) for k in ("auc", "loc_f1")}


def chosen_from(cv: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """The threshold block for :func:`falsealarm.write`: the cross-validation's choice and
    held-out figures, the floors measured on the model in ``model_dir``."""
    threshold = float(cv["threshold"])
    if cv["leave_one_source_out_pooled"] > falsealarm.BOUND:
        raise SystemExit(
            f"held-out false alarms {cv['leave_one_source_out_pooled']:.1%} exceed the "
            f"{falsealarm.BOUND:.0%} bound: not shipped"
        )
    block = {
        "rate": falsealarm.RATE, "bound": falsealarm.BOUND, "seed": falsealarm.CALIBRATION_SEED,
        "check_seed": falsealarm.CHECK_SEED,
        "check_false_alarm_rate": round(float(cv["check_false_alarm_rate"]), 6),
        "chosen_on": "out-of-fold scores of the cross-validation by source (docs/MODEL.md)",
        "sources": cv["sources"], "images": cv["images"],
        "leave_one_source_out": cv["leave_one_source_out"],
        "leave_one_source_out_pooled": round(float(cv["leave_one_source_out_pooled"]), 6),
        "authentic_scores": cv["authentic_scores"],
    }  # fmt: skip
    floors = falsealarm.floors(model_dir, threshold, unseen.base_planes())
    return {"threshold": threshold, "floors": floors, "false_alarms": block}


def ship(cv_dir: Path, model_dir: Path) -> None:
    """Train on every source by the recipe of ``cv_dir/crossval.json``; write the model."""
    cv = json.loads((cv_dir / "crossval.json").read_text(encoding="utf-8"))
    recipe = cv["recipe"]
    if cv["leave_one_source_out_pooled"] > falsealarm.BOUND:
        chosen_from(cv, model_dir)  # refuses before any training
    args = argparse.Namespace(**recipe)
    torch.set_num_threads(int(recipe.get("threads", 1)))
    started = time.monotonic()
    pool, fresh = crossval_data.fold_pool(args, (), crossval_data.pydicom_test_split())
    log(f"pool of {len(pool.families)} planes in {time.monotonic() - started:.0f} s")
    budget = Budget(10**6, lr=args.lr, seconds=args.minutes * 60, bf16=args.precision == "bfloat16")
    model = train(
        args.arch, pool, budget, seed=args.seed, augment=True, fresh=fresh, init=initial(args)
    )
    del pool
    alpha = float(recipe.get("interpolate", 1.0))
    if alpha < 1.0:  # the fine-tuned weights interpolated with the starting model's
        start = warmstart.proposed_from_onnx(Path(args.init))
        tuned = model.state_dict()
        model.load_state_dict(
            {k: alpha * tuned[k] + (1 - alpha) * v if v.is_floating_point() else tuned[k]
             for k, v in start.items()}
        )  # fmt: skip
    model.eval()
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), cv_dir / "shipped.pt")
    export(model, model_dir / "detector.onnx")
    card = _card(recipe, cv, budget.done)
    (model_dir / "detector.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    card["acceptance"] = _check_floors(model_dir, card["threshold"])
    (model_dir / "detector.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    falsealarm.write(model_dir, chosen_from(cv, model_dir))
    log(f"shipped {card['version']} to {model_dir}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossval", type=Path, required=True, help="a crossval --out DIR")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    ship(args.crossval, args.model_dir)


if __name__ == "__main__":
    main()
