"""Compare training recipes of the tamper detector under an equal clock, on validation.

    .venv-train/bin/python bench/detect_recipe.py --minutes 7.7 \\
        --variant crop=128,lr=0.002 --variant crop=96,lr=0.004

Needs the ``train`` extra (torch). Builds `make train`'s data once (same seed, the same pool of
training pairs and the same validation set), then trains a network with augmentation once per
variant, two variants at a time in forked one-thread workers (as `make train` runs its two
workers), each for the same wall-clock time. A variant is a comma-separated list of
``key=value`` among ``crop`` (window side before the whole-plane phase), ``lr``, ``batch``,
``full`` (share of the progress on whole planes), ``steps`` (step budget, default 3,000: the
warm-up is a twentieth of it and the schedule follows the larger of the step and time
fractions, so set it near what the clock allows), ``bf16`` (1: forward pass under bfloat16
autocast, as `make train` does where the CPU has it; default 0, float32) and ``arch``
(``proposed``, the default, or another name of ``nets.ARCHITECTURES`` such as ``deep``), and
``views`` (more training images per real one, as `make train --real-views` draws them; each
distinct value builds its own pool before the workers start; default 0), and ``fresh`` (pool
pairs replaced by new ones per step, as `make train --fresh-pairs` does; default 0).
Every variant is measured on validation
(never on test), with temperature and threshold fitted there, scored through both views (as
shipped) and through the plane alone.

Prints one table row per variant and writes the results as JSON to ``--out``. Short runs rank
recipes; they do not predict the full run's figures, and a difference of about 0.01 AUC is within
what another seed moves.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from scanseal.detect import sigmoid  # noqa: E402
from scanseal.detect.training import evaluation, metrics, sets, train  # noqa: E402

KEYS: dict[str, Any] = {
    "crop": int,
    "lr": float,
    "batch": int,
    "full": float,
    "steps": int,
    "bf16": int,
    "arch": str,
    "views": int,
    "fresh": float,
}
_DATA: dict[str, Any] = {}
"""The pools and training images (one of each per ``views`` value) and the validation set,
built before the workers are forked so they inherit them."""


def parse_variant(text: str) -> dict[str, Any]:
    """``"crop=96,lr=0.004"`` -> ``{"crop": 96, "lr": 0.004}``; unknown keys are an error."""
    options: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in KEYS or not value:
            raise SystemExit(f"variant {text!r}: expected key=value with key in {sorted(KEYS)}")
        options[key] = KEYS[key](value)
    return options


def _budget(options: dict[str, Any], seconds: float) -> train.Budget:
    return train.Budget(
        steps=int(options.get("steps", 3000)),
        batch=int(options.get("batch", 32)),
        lr=float(options.get("lr", train.Budget.lr)),
        seconds=seconds,
        crop=int(options.get("crop", train.CROP)),
        full_share=float(options.get("full", train.FULL_SHARE)),
        bf16=bool(options.get("bf16", 0)),
    )


def _scored(model: torch.nn.Module, two_views: bool) -> dict[str, float]:
    val = _DATA["val"]
    labels = np.array([s.tampered for s in val], float)
    logits, maps = train.predict(model, val, two_views=two_views)
    temperature = evaluation.fit_temperature(labels, logits)
    scores = sigmoid(logits / temperature)
    threshold = metrics.best_threshold(labels, scores)
    overall = evaluation.evaluate(val, scores, maps, threshold)["overall"]
    keys = ("accuracy", "auc", "detection_at_1pct_fa", "loc_f1")
    return {key: round(float(overall[key]), 4) for key in keys}


def run_variant(job: tuple[str, float, int]) -> dict[str, Any]:
    """Train one variant in this worker (one thread) and measure it on validation."""
    text, seconds, seed = job
    torch.set_num_threads(1)
    options = parse_variant(text)
    budget = _budget(options, seconds)
    started = time.monotonic()
    arch = str(options.get("arch", "proposed"))
    views = int(options.get("views", 0))
    pool = _DATA["pools"][views]
    fresh = sets.fresh_pairs(seed, _DATA["bases"][views], float(options.get("fresh", 0)))
    model = train.train(arch, pool, budget, seed=seed, augment=True, fresh=fresh)
    return {
        "variant": text,
        "steps": budget.done,
        "train_seconds": round(time.monotonic() - started, 1),
        "two_views": _scored(model, True),
        "one_view": _scored(model, False),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="key=value,...")
    parser.add_argument("--minutes", type=float, default=7.7, help="wall clock per variant")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--phantoms", type=int, default=sets.PHANTOMS)
    parser.add_argument("--pool", type=int, default=8000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "detect-recipe.json")
    args = parser.parse_args(argv)
    options = [parse_variant(text) for text in args.variant]  # a typo fails before the data
    pools, bases = {}, {}
    for views in sorted({int(option.get("views", 0)) for option in options}):
        bases[views] = sets.base_images(args.seed, "train", args.phantoms, views)
        pools[views] = sets.build_pool(args.seed, bases[views], args.pool)
    _DATA.update(
        pools=pools,
        bases=bases,
        val=sets.held_out(args.seed, "val", args.phantoms)[0],
    )
    jobs = [(text, args.minutes * 60, args.seed) for text in args.variant]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as workers:
        results = list(workers.map(run_variant, jobs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| variant | steps | AUC | accuracy | det. @1% FA | loc. F1 | AUC, one view |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        two, one = row["two_views"], row["one_view"]
        print(
            f"| {row['variant'] or 'defaults'} | {row['steps']} | {two['auc']:.3f} "
            f"| {two['accuracy']:.1%} | {two['detection_at_1pct_fa']:.1%} | {two['loc_f1']:.3f} "
            f"| {one['auc']:.3f} |"
        )


if __name__ == "__main__":
    main()
