"""Train, evaluate and export the tamper detector: ``python -m scanseal.detect.training``.

One seeded run does, in order of importance (so an interrupted run still leaves a model):

1. builds the data: real frames and phantoms split by study (train / val / test), a pool of
   benign and tampered pairs of training planes, and balanced full-size val and test sets;
2. trains the shipped model (the ``--arch`` network, ``proposed`` by default, with
   augmentation), picks its threshold and temperature on val, exports it to ONNX and measures
   the ONNX file on test;
3. trains the three other ablation rows (basic, resnet, the same network without augmentation);
4. leave-one-family-out: retrains without each tamper family and measures that family on test.

Results go to ``--out``/metrics.json; :mod:`scanseal.detect.training.report` turns them into the
tables of docs/MODEL.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scanseal.detect import MODEL_DIR, sigmoid
from scanseal.detect.training import data, metrics, synth
from scanseal.detect.training.evaluation import evaluate, fit_temperature, onnx_predict
from scanseal.detect.training.nets import ARCHITECTURES
from scanseal.detect.training.sets import (
    PHANTOMS,
    base_images,
    build_pool,
    fresh_pairs,
    held_out,
)
from scanseal.detect.training.train import (
    EXPORTED_INTERFACE,
    Budget,
    export,
    fast_bfloat16,
    log,
    predict,
    train,
)


def _calibrated(
    model: nn.Module, val: list[synth.Sample]
) -> tuple[float, float, np.ndarray[Any, Any]]:
    labels = np.array([s.tampered for s in val], float)
    logits, _ = predict(model, val)
    temperature = fit_temperature(labels, logits)
    threshold = metrics.best_threshold(labels, sigmoid(logits / temperature))
    return temperature, threshold, labels


def _measure(model: nn.Module, val: list[synth.Sample], test: list[synth.Sample]) -> dict[str, Any]:
    temperature, threshold, _ = _calibrated(model, val)
    logits, maps = predict(model, test)
    result = evaluate(test, sigmoid(logits / temperature), maps, threshold)
    result.update(threshold=threshold, temperature=temperature)
    return result


def _ship(
    model: nn.Module,
    val: list[synth.Sample],
    test: list[synth.Sample],
    args: argparse.Namespace,
    steps: int,
) -> dict[str, Any]:
    """Export, calibrate on val, and measure the ONNX file itself on test (through the runtime
    detector, so the card is written first and completed with the acceptance floors)."""
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    export(model, model_dir / "detector.onnx")
    temperature, threshold, _ = _calibrated(model, val)
    card: dict[str, Any] = {
        "version": f"detector-1.7-seed{args.seed}-steps{steps}",
        "threshold": round(threshold, 6),
        "temperature": round(temperature, 6),
        "heat_level": 0.5,
        **EXPORTED_INTERFACE,
        "training": {"seed": args.seed, "steps": steps, "architecture": args.arch,
                     "augmentation": True, "precision": args.precision,
                     "fresh_pairs_per_step": args.fresh_pairs, "split_salt": data.SPLIT_SALT},
    }  # fmt: skip
    (model_dir / "detector.json").write_text(json.dumps(card, indent=2) + "\n")
    scores, maps = onnx_predict(model_dir, test)
    result = evaluate(test, scores, maps, threshold)
    card["acceptance"] = _acceptance(model_dir, threshold)
    (model_dir / "detector.json").write_text(json.dumps(card, indent=2) + "\n")
    result.update(threshold=threshold, temperature=temperature, onnx=True)
    return result


def _acceptance(model_dir: Path, threshold: float) -> dict[str, float]:
    """Floors for the test suite's re-measurement on :func:`data.check_set` (2 points of
    margin for numeric differences between machines)."""
    check = synth.balanced_set(np.random.default_rng(4242), data.check_set())
    scores, maps = onnx_predict(model_dir, check)
    measured = evaluate(check, scores, maps, threshold)["overall"]
    return {
        k: float(np.floor((measured[k] - 0.02) * 100) / 100) for k in ("accuracy", "auc", "loc_f1")
    }


def _bf16(args: argparse.Namespace) -> bool:
    return bool(args.precision == "bfloat16")


_SHARED: dict[str, Any] = {}
"""The run's data, set before the two workers are forked so they inherit it without copying."""


def _worker_start() -> None:
    torch.set_num_threads(1)


def _ship_job(args: argparse.Namespace) -> tuple[dict[str, Any], float, int]:
    """Worker 1: the shipped model (proposed with augmentation), the bulk of the budget.
    The weights go back as numpy arrays (plain pickles, no shared-memory tensors)."""
    started = time.monotonic()
    budget = Budget(args.steps_ship, seconds=args.ship_minutes * 60, bf16=_bf16(args))
    pool, side_done = _SHARED["pool"], _SHARED["side_done"]
    fresh = fresh_pairs(args.seed, _SHARED["train_bases"], args.fresh_pairs)
    model = train(
        args.arch, pool, budget, seed=args.seed, augment=True, widen=side_done, fresh=fresh
    )
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return state, time.monotonic() - started, budget.done


def _side_job(args: argparse.Namespace, run_started: float) -> dict[str, Any]:
    """Worker 2: the three other ablation rows, then leave-one-family-out, within the deadline;
    then it hands its core to the shipped model's worker.

    Partial results are written to ``side.json`` after each model, so an interrupted run still
    leaves what was measured."""
    try:
        return _side_models(args, run_started)
    finally:
        _SHARED["side_done"].set()


def _side_models(args: argparse.Namespace, run_started: float) -> dict[str, Any]:
    pool, val, test = _SHARED["pool"], _SHARED["val"], _SHARED["test"]
    results: dict[str, Any] = {"ablation": {}, "lofo": {}}
    side_path = Path(args.out) / "side.json"
    rows = (("basic", "basic", False), ("resnet", "resnet", False), ("proposed", args.arch, False))
    for name, arch, augment in rows if args.steps_ablation > 0 else ():
        started = time.monotonic()
        budget = Budget(args.steps_ablation, seconds=args.side_minutes * 60, bf16=_bf16(args))
        model = train(arch, pool, budget, seed=args.seed, augment=augment)
        seconds = time.monotonic() - started
        measured = _measure(model, val, test)
        measured.update(steps=budget.done, train_seconds=seconds)
        results["ablation"][name] = measured
        log(f"{name}: {measured['overall']}")
        side_path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    last = 0.0
    for family in synth.FAMILIES if args.steps_lofo else ():
        elapsed = time.monotonic() - run_started
        if elapsed + last > args.deadline_minutes * 60:
            log(f"lofo {family}: skipped, past the {args.deadline_minutes}-minute budget")
            results["lofo"][family] = {"skipped": "time budget", "steps": args.steps_lofo}
            continue
        started = time.monotonic()
        budget = Budget(args.steps_lofo, seconds=args.side_minutes * 60, bf16=_bf16(args))
        model = train(args.arch, pool, budget, seed=args.seed, augment=True, exclude=family)
        measured = _measure(
            model,
            [s for s in val if s.family != family],
            [s for s in test if s.family == family or not s.tampered],
        )
        results["lofo"][family] = {"held_out": measured["families"][family], "steps": budget.done}
        log(f"lofo {family}: {results['lofo'][family]['held_out']}")
        last = time.monotonic() - started
        side_path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return results


def run(args: argparse.Namespace) -> None:
    """Build the data, then train on two forked single-thread workers side by side: one trains
    the shipped model, the other the ablation rows and leave-one-out models. Two one-thread
    processes use two cores better than one two-thread process for convolutions this small,
    and far better when the cores are shared (no thread-pool barriers to wait on)."""
    run_started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"seed": args.seed, "args": vars(args)}
    results["load_average"] = {"start": os.getloadavg()[0]}

    def save() -> None:
        (out / "metrics.json").write_text(json.dumps(results, indent=2, default=float) + "\n")

    log("loading images")
    train_bases = base_images(args.seed, "train", args.phantoms, args.real_views)
    val, _ = held_out(args.seed, "val", args.phantoms)
    test, _ = held_out(args.seed, "test", args.phantoms)
    log(f"pool of {args.pool} planes from {len(train_bases)} images")
    pool = build_pool(args.seed, train_bases, args.pool)
    per_base = len(synth.FAMILIES) + len(synth.BENIGN)
    results["data"] = {
        "train_images": len(train_bases), "real_views": args.real_views, "pool": args.pool,
        "val_samples": len(val), "test_samples": len(test),
        "val_images": len(val) // per_base, "test_images": len(test) // per_base,
        "test_modalities": sorted({s.modality for s in test}),
    }  # fmt: skip
    log(f"data {results['data']}")
    context = multiprocessing.get_context("fork")
    _SHARED.update(
        pool=pool, train_bases=train_bases, val=val, test=test, side_done=context.Event()
    )
    # No torch computation in this process before the fork: an initialised OpenMP pool does
    # not survive fork() (GNU libgomp hangs in the child).
    with ProcessPoolExecutor(2, mp_context=context, initializer=_worker_start) as workers:
        shipped = workers.submit(_ship_job, args)
        side = workers.submit(_side_job, args, run_started)
        state, seconds, steps = shipped.result()
        torch.set_num_threads(1)  # the other worker still trains on the second core
        model = ARCHITECTURES[args.arch]()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        model.eval()
        measured = _ship(model, val, test, args, steps)
        torch.save(model.state_dict(), out / "proposed_aug.pt")
        measured.update(steps=steps, train_seconds=seconds)
        results["ablation"] = {"proposed_aug": measured}
        log(f"proposed_aug: {measured['overall']}")
        save()
        others = side.result()
    results["ablation"].update(others["ablation"])
    results["lofo"] = others["lofo"]
    results["total_seconds"] = time.monotonic() - run_started
    results["load_average"]["end"] = os.getloadavg()[0]
    save()
    log("done")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--phantoms", type=int, default=PHANTOMS)
    parser.add_argument("--pool", type=int, default=8000)
    parser.add_argument(
        "--real-views",
        type=int,
        default=0,
        help="more training images per real one: random frames and fields of view",
    )
    parser.add_argument(
        "--fresh-pairs",
        type=float,
        default=0.0,
        help="pool pairs replaced by new ones per step of the shipped model (0: a fixed pool)",
    )
    parser.add_argument("--steps-ship", type=int, default=60000)
    parser.add_argument("--ship-minutes", type=float, default=50.0, help="0: no time cap")
    parser.add_argument("--steps-ablation", type=int, default=600)
    parser.add_argument("--steps-lofo", type=int, default=200)
    parser.add_argument("--side-minutes", type=float, default=6.0, help="cap per side model")
    parser.add_argument("--deadline-minutes", type=float, default=54.0)
    parser.add_argument(
        "--arch",
        choices=sorted(ARCHITECTURES),
        default="proposed",
        help="the network of the shipped model, its no-augmentation row and leave-one-out models",
    )
    parser.add_argument(
        "--precision",
        choices=("bfloat16", "float32"),
        default="bfloat16" if fast_bfloat16() else "float32",
        help="forward pass under bfloat16 autocast (default where the CPU does it natively)",
    )
    parser.add_argument("--out", default="bench/out/detect-train")
    parser.add_argument("--model-dir", default=str(MODEL_DIR), help="where the ONNX model goes")
    run(parser.parse_args(argv))
