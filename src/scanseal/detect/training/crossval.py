"""Grouped cross-validation by source: how a training recipe does on sources it never saw.

The real sources of :mod:`scanseal.detect.training.sources` are split into ``FOLDS`` (whole
sources, never an image or a patient on two sides). For each fold a model is trained on
pydicom's files and the other folds' sources (with phantoms only when ``--phantoms`` asks),
then it scores the held-out fold's images as the headline evaluation builds them
(:func:`scanseal.detect.training.unseen.build`: the evaluation's own tampering,
:mod:`~scanseal.detect.training.attacks`, which training never uses). Every sample thus gets
an out-of-fold score; the figures (AUC, detection at 1 % false alarms, localisation F1, per
source, family and modality) are computed on them, and the threshold is chosen on out-of-fold
authentic scores by :func:`scanseal.detect.training.falsealarm.choose`, its held-out false
alarms measured leave-one-source-out over those scores. One temperature, fitted on the pooled
out-of-fold logits, turns every fold's logits into scores.

    python -m scanseal.detect.training.crossval --out DIR [--arch A] [--tamper compose|synth]
        [--minutes M] [--phantoms N] [--folds 0,1,2]     (training venv)

writes ``DIR/fold<k>.npz`` per fold and ``DIR/crossval.json`` (the figures and the recipe).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import torch

from scanseal.detect import sigmoid
from scanseal.detect.training import (
    crossval_data,
    evaluation,
    falsealarm,
    metrics,
    unseen,
    warmstart,
)
from scanseal.detect.training.crossval_data import FOLDS
from scanseal.detect.training.train import Budget, fast_bfloat16, log, predict, train

SETS: Final = {"headline": unseen.SEED, "calibration": falsealarm.CALIBRATION_SEED,
               "check": falsealarm.CHECK_SEED}  # fmt: skip
"""The three sample sets every fold model scores: the headline's tampered and authentic set,
and the authentic sets the threshold is chosen on and checked on."""


def _cases(bases: unseen.Bases) -> dict[str, list[unseen.Case]]:
    return {
        name: unseen.build(bases, seed, tampered=name == "headline") for name, seed in SETS.items()
    }


def _score(model: torch.nn.Module, cases: list[unseen.Case]) -> tuple[Any, Any]:
    """Two-view logits and maps, as the exported model computes them."""
    logits, maps = predict(model, cast(Any, cases))  # the planes are all it reads
    return logits, np.stack(maps).astype(np.float16)


def initial(args: argparse.Namespace) -> dict[str, torch.Tensor] | None:
    """The starting weights of ``--init`` (an exported ``proposed`` model), or None."""
    if not args.init:
        return None
    if args.arch != "proposed":
        raise SystemExit("--init reads a proposed network: use --arch proposed")
    return warmstart.proposed_from_onnx(Path(args.init))


def run_fold(args: argparse.Namespace, fold: int, cases: dict[str, list[unseen.Case]]) -> None:
    """Train without fold ``fold``'s sources, score its samples, write ``fold<k>.npz``."""
    held = FOLDS[fold]
    started = time.monotonic()
    pool, fresh = crossval_data.fold_pool(args, held)
    made = time.monotonic() - started
    log(f"fold {fold} {held}: pool of {len(pool.families)} planes in {made:.0f} s")
    budget = Budget(10**6, lr=args.lr, seconds=args.minutes * 60, bf16=args.precision == "bfloat16")
    model = train(
        args.arch, pool, budget, seed=args.seed + fold, augment=True, fresh=fresh,
        init=initial(args),
    )  # fmt: skip
    del pool
    out: dict[str, Any] = {"steps": budget.done, "seconds": time.monotonic() - started}
    for name, rows in cases.items():
        keep = [c for c in rows if c.source in held]
        logits, maps = _score(model, keep)
        out[f"{name}_logits"], out[f"{name}_maps"] = logits, maps
    np.savez_compressed(Path(args.out) / f"fold{fold}.npz", **out)
    torch.save(model.state_dict(), Path(args.out) / f"fold{fold}.pt")
    log(f"fold {fold}: {budget.done} steps, {out['seconds']:.0f} s")


def _gather(out: Path, cases: dict[str, list[unseen.Case]]) -> dict[str, Any]:
    """Every set's out-of-fold logits and maps, in the sets' own order."""
    gathered: dict[str, Any] = {}
    steps = {}
    for name, rows in cases.items():
        logits = np.full(len(rows), np.nan)
        maps: list[Any] = [None] * len(rows)
        for fold, held in enumerate(FOLDS):
            path = out / f"fold{fold}.npz"
            if not path.exists():
                continue
            saved = np.load(path)
            steps[fold] = int(saved["steps"])
            where = [i for i, c in enumerate(rows) if c.source in held]
            logits[where] = saved[f"{name}_logits"]
            for i, m in zip(where, saved[f"{name}_maps"], strict=True):
                maps[i] = m.astype(np.float32)
        gathered[name] = (logits, maps)
    gathered["steps"] = steps
    return gathered


def summarise(args: argparse.Namespace, cases: dict[str, list[unseen.Case]]) -> dict[str, Any]:
    """The out-of-fold figures of the folds trained so far (a fold not yet trained is left
    out of every set)."""
    got = _gather(Path(args.out), cases)
    logits, maps = got["headline"]
    seen = ~np.isnan(logits)
    head = [c for c, k in zip(cases["headline"], seen, strict=True) if k]
    labels = np.array([c.tampered for c in head], float)
    temperature = evaluation.fit_temperature(labels, logits[seen])
    scores = {name: sigmoid(got[name][0] / temperature) for name in SETS}
    calib = cases["calibration"]
    calib_ok = ~np.isnan(scores["calibration"])
    kinds = [c.kind for c, k in zip(calib, calib_ok, strict=True) if k]
    origins = [c.source for c, k in zip(calib, calib_ok, strict=True) if k]
    threshold = falsealarm.choose(scores["calibration"][calib_ok], kinds)
    held = falsealarm.leave_one_source_out(scores["calibration"][calib_ok], origins, kinds)
    flagged = sum(row["false_alarms"] for row in held.values())
    figures = unseen.figures(head, scores["headline"][seen], [maps[i] for i in np.nonzero(seen)[0]],
                             threshold)  # fmt: skip
    check = scores["check"][~np.isnan(scores["check"])]
    return {
        "recipe": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "folds": {str(f): list(FOLDS[f]) for f in got["steps"]},
        "steps": got["steps"],
        "temperature": temperature,
        "threshold": threshold,
        "check_false_alarm_rate": falsealarm.rate_at(check, threshold),
        "leave_one_source_out": held,
        "leave_one_source_out_pooled": flagged / max(int(calib_ok.sum()), 1),
        "figures": figures,
        "validation_threshold": metrics.best_threshold(labels, scores["headline"][seen]),
        "images": len({c.path for c in head}),
        "sources": sorted({c.source for c in head}),
        "authentic_scores": [round(float(v), 6) for v in np.sort(scores["calibration"][calib_ok])],
        "load_average": os.getloadavg()[0],
        "scores": [
            {"source": c.source, "kind": c.kind, "path": str(c.path), "score": round(float(v), 6)}
            for c, v in zip(head, scores["headline"][seen], strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="residual")
    parser.add_argument("--tamper", choices=("compose", "synth"), default="compose")
    parser.add_argument("--minutes", type=float, default=7.0, help="training time per fold")
    parser.add_argument("--pairs", type=int, default=3000, help="pairs in the training pool")
    parser.add_argument("--views", type=int, default=6, help="more views per real image")
    parser.add_argument("--phantoms", type=int, default=0)
    parser.add_argument("--fresh", type=float, default=0.5, help="new pairs per step")
    parser.add_argument("--folds", default=",".join(str(i) for i in range(len(FOLDS))))
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--init", default="", help="fine-tune this ONNX model (proposed only)")
    parser.add_argument(
        "--interpolate",
        type=float,
        default=1.0,
        help="ship: weights this share fine-tuned, the rest --init's (bench/detect_interpolate.py)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument(
        "--precision",
        choices=("bfloat16", "float32"),
        default="bfloat16" if fast_bfloat16() else "float32",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cases = _cases(unseen.base_planes())
    if not args.summary_only:
        for fold in (int(f) for f in args.folds.split(",")):
            run_fold(args, fold, cases)
    result = summarise(args, cases)
    (args.out / "crossval.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    overall = result["figures"]["overall"]
    log(
        f"AUC {overall['auc']:.3f} det@1%FA {overall['detection_at_1pct_fa']:.1%} "
        f"locF1 {overall['loc_f1']:.3f} threshold {result['threshold']} "
        f"LOSO FA {result['leave_one_source_out_pooled']:.1%}"
    )


if __name__ == "__main__":
    main()
