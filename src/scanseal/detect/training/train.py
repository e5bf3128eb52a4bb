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
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from scanseal.detect import MODEL_DIR, Detector, heat, sigmoid
from scanseal.detect.training import data, metrics, synth
from scanseal.detect.training.nets import ARCHITECTURES

CROP = 64
PHANTOMS = 480
"""Training phantoms of a run (``--phantoms``); validation gets an eighth as many, test a third."""
FULL_SHARE = 0.25
"""The last quarter of the steps trains on whole 224×224 planes, so the image score (a global
max) is calibrated for the size it is used at; the rest uses cheaper ``CROP``-sized crops (more
steps per minute than larger ones, which bought more than the wider view on validation: see
docs/MODEL.md, "Choosing the recipe")."""


@dataclass
class Pool:
    """Whole training planes (float16) with masks, region centres and families."""

    planes: np.ndarray[Any, Any]
    masks: np.ndarray[Any, Any]
    centres: np.ndarray[Any, Any]
    families: np.ndarray[Any, Any]


@dataclass
class Budget:
    """At most ``steps`` steps and, if ``seconds`` > 0, at most that much wall-clock time.

    The schedule follows progress, the larger of the step and the time fraction, so a run cut
    short by the clock (a busy shared machine) still decays its learning rate and trains its
    last ``full_share`` on whole planes (``crop``-sized windows before). With ``bf16`` the
    forward pass runs under bfloat16 autocast (weights, loss and update stay float32; the model
    keeps its fixed filters in float32). ``done`` is the number of steps actually taken."""

    steps: int
    batch: int = 32
    lr: float = 4e-3
    seconds: float = 0.0
    crop: int = CROP
    full_share: float = FULL_SHARE
    bf16: bool = False
    done: int = 0

    def progress(self, step: int, elapsed: float) -> float:
        by_time = elapsed / self.seconds if self.seconds > 0 else 0.0
        return max(step / self.steps, by_time)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- data --------------------------------------------------------------------------------------


def _bases(
    seed: int, split: data.Split, phantoms: int, views: int = 0
) -> list[tuple[synth.Plane, str]]:
    """Real planes of ``split`` (``views`` more per real image: other frames and fields of
    view, see :func:`data.real_views`), then ``phantoms`` phantoms."""
    real = [(plane, modality) for plane, modality, _ in data.real_planes(split)]
    stream = ("train", "val", "test").index(split)
    if views:
        view_rng = np.random.default_rng([seed, 11, stream])
        real += [(plane, kind) for plane, kind, _ in data.real_views(split, view_rng, views)]
    rng = np.random.default_rng([seed, stream])
    made = data.phantom_planes(rng, split, phantoms)
    return real + [(plane, style) for plane, style, _ in made]


def held_out(
    seed: int, split: data.Split, phantoms: int = PHANTOMS
) -> tuple[list[synth.Sample], list[tuple[synth.Plane, str]]]:
    """A run's balanced validation or test set and the base images it was made from: the same
    samples for the same seed and ``phantoms`` (the run's ``--phantoms``) wherever it is built,
    so the gate, the benches and the run itself judge models on identical sets."""
    share, stream = {"val": (8, 2), "test": (3, 3)}[split]
    bases = _bases(seed, split, phantoms // share)
    return synth.balanced_set(np.random.default_rng([seed, stream]), bases), bases


def build_pool(seed: int, bases: list[tuple[synth.Plane, str]], size: int) -> Pool:
    """``size`` planes in pairs of one base image: row ``2p`` benignly changed, row ``2p + 1``
    tampered (families and benign changes in rotation), seeded per pair.

    Batches take both rows of a pair through the same window: two images with the same anatomy
    and opposite labels teach the model the manipulation rather than the content."""
    side = synth.SIZE
    pool = Pool(
        planes=np.empty((size, side, side), np.float16),
        masks=np.empty((size, side, side), np.bool_),
        centres=np.full((size, 2), -1, np.int32),
        families=np.empty(size, dtype=object),
    )
    real = [b for b in bases if not synth.is_phantom(b[1])]
    fake = [b for b in bases if synth.is_phantom(b[1])]
    for pair in range(size // 2):
        rng = np.random.default_rng([seed, 7, pair])
        group = real if (real and rng.random() < 0.5) else fake
        plane, modality = group[int(rng.integers(len(group)))]
        donor = bases[int(rng.integers(len(bases)))][0]
        _fill_pair(pool, pair, (seed, 7, pair), plane, modality, donor)
    return pool


def _fill_pair(
    pool: Pool,
    pair: int,
    key: tuple[int, ...],
    plane: synth.Plane,
    modality: str,
    donor: synth.Plane,
) -> None:
    """Write pair ``pair`` of the pool from one base image: its benign change and its tampered
    version (the kinds follow the pair's index, so every family and benign change keeps its
    share), seeded by ``key``."""
    families, changes = synth.FAMILIES, synth.BENIGN
    for member in (0, 1):
        index = 2 * pair + member
        if member:
            kind = families[pair % len(families)]
        else:  # every (family, benign change) combination once in each run of 7 × 7 pairs
            kind = changes[(pair // len(families)) % len(changes)]
        rng = np.random.default_rng([*key, member])
        sample = synth.make_sample(rng, plane, donor, modality, kind)
        pool.planes[index], pool.masks[index] = sample.plane, sample.mask
        pool.families[index] = kind
        pool.centres[index] = -1
        if sample.mask.any():
            ys, xs = np.nonzero(sample.mask)
            pool.centres[index] = int(ys.mean()), int(xs.mean())


@dataclass
class FreshPairs:
    """Replaces pairs of the pool with new ones while a model trains, ``per_step`` pairs per
    step on average, oldest first, so the pool turns over many times in a long run.

    A new pair is a new manipulation of a real training image (half of the time, as in the
    pool) or of a phantom generated for it, never seen before, so that a network cannot learn
    which of a few hundred phantoms are authentic; phantoms cost milliseconds to draw. (Over a
    full run this helped on unseen phantoms and hurt on real studies, docs/MODEL.md "Choosing
    the recipe"; it is off by default.) Phantoms drawn here are training images by
    construction: they come from their own random stream, which validation and test never
    use."""

    real: list[tuple[synth.Plane, str]]
    donors: list[tuple[synth.Plane, str]]
    seed: int
    per_step: float
    made: int = 0

    def after_step(self, pool: Pool, step: int) -> None:
        """Bring the pool up to ``per_step * (step + 1)`` new pairs."""
        pairs = len(pool.families) // 2
        while self.made < self.per_step * (step + 1):
            self._replace(pool, self.made % pairs)
            self.made += 1

    def _replace(self, pool: Pool, pair: int) -> None:
        key = (self.seed, 13, self.made)
        rng = np.random.default_rng(key)
        if self.real and rng.random() < 0.5:
            plane, modality = self.real[int(rng.integers(len(self.real)))]
        else:
            modality = synth.PHANTOM_STYLES[self.made % len(synth.PHANTOM_STYLES)]
            plane = synth.phantom(rng, modality)
        donor = self.donors[int(rng.integers(len(self.donors)))][0]
        _fill_pair(pool, pair, key, plane, modality, donor)


def fresh_pairs(
    seed: int, bases: list[tuple[synth.Plane, str]], per_step: float
) -> FreshPairs | None:
    """The :class:`FreshPairs` for training images ``bases``, or None when ``per_step`` is 0."""
    if per_step <= 0:
        return None
    real = [b for b in bases if not synth.is_phantom(b[1])]
    return FreshPairs(real, bases, seed, per_step)


def _window(pool: Pool, row: int, rng: np.random.Generator, size: int) -> tuple[int, int]:
    """A ``size`` window holding the tampered region's centre (anywhere for a benign plane).

    The centre stays at least 24 pixels from the window's edge, fewer in windows under 64."""
    limit = synth.SIZE - size
    if limit <= 0:
        return 0, 0
    cy, cx = pool.centres[row]
    if cy < 0:
        return int(rng.integers(limit + 1)), int(rng.integers(limit + 1))
    margin = max(0, min(24, size // 2 - 8))
    y = int(np.clip(cy - rng.integers(margin, size - margin), 0, limit))
    x = int(np.clip(cx - rng.integers(margin, size - margin), 0, limit))
    return y, x


def _batch(
    pool: Pool, rows: np.ndarray[Any, Any], rng: np.random.Generator, augment: bool, size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Rows come in pairs of one base image (benign row, tampered row): both members get the
    tampered row's window and the same geometric augmentation."""
    images, targets = [], []
    for pair in np.asarray(rows).reshape(-1, 2):
        y, x = _window(pool, int(pair[1]), rng, size)
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        for row in pair:
            image = pool.planes[row, y : y + size, x : x + size].astype(np.float32)
            mask = pool.masks[row, y : y + size, x : x + size]
            if augment:
                image, mask = _augment(rng, image, mask, turns, flip)
            images.append(image)
            targets.append(mask)
    planes = torch.from_numpy(np.stack(images)[:, None]).contiguous(
        memory_format=torch.channels_last
    )
    masks = torch.from_numpy(np.stack(targets)[:, None].astype(np.float32))
    labels = (masks.sum(dim=(1, 2, 3)) >= 16).float()
    return planes, masks, labels


def _augment(
    rng: np.random.Generator,
    image: np.ndarray[Any, Any],
    mask: np.ndarray[Any, Any],
    turns: int,
    flip: bool,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Dihedral flips and rotations (given, shared by a pair), a mild global gain and gamma."""
    image, mask = np.rot90(image, turns), np.rot90(mask, turns)
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    image = np.clip(image * rng.uniform(0.9, 1.1), 0, 1) ** rng.uniform(0.85, 1.15)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(mask)


# --- training ----------------------------------------------------------------------------------


def _loss(score: Tensor, heat_logits: Tensor, masks: Tensor, labels: Tensor) -> Tensor:
    target = functional.adaptive_avg_pool2d(masks, heat_logits.shape[2:])
    image_loss = functional.binary_cross_entropy_with_logits(score, labels)
    map_loss = functional.binary_cross_entropy_with_logits(
        heat_logits, target, pos_weight=torch.tensor(3.0)
    )
    prob = torch.sigmoid(heat_logits)
    overlap = (prob * target).sum(dim=(1, 2, 3))
    dice = 1 - (2 * overlap + 1) / (prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
    return image_loss + map_loss + 0.5 * (dice * labels).mean()


def train(
    arch: str,
    pool: Pool,
    budget: Budget,
    *,
    seed: int,
    augment: bool,
    exclude: str | None = None,
    widen: Event | None = None,
    fresh: FreshPairs | None = None,
) -> nn.Module:
    """AdamW (weight decay 1e-4), warm-up then cosine decay over the budget's progress; the
    last quarter of the progress trains on whole planes. Sets ``budget.done``.

    Once ``widen`` is set (the other worker has finished), the rest trains on two threads.
    With ``fresh``, pairs of the pool are replaced by new ones as the steps go (the pool is
    changed in place)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 11])
    model = ARCHITECTURES[arch]().to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=budget.lr, weight_decay=1e-4)
    warm = max(1, budget.steps // 20)
    pairs = np.arange(len(pool.families) // 2)
    if exclude:
        pairs = pairs[pool.families[2 * pairs + 1] != exclude]
    model.train()
    started = time.monotonic()
    step = 0
    while (progress := budget.progress(step, time.monotonic() - started)) < 1:
        if widen is not None and widen.is_set() and torch.get_num_threads() < 2:
            torch.set_num_threads(2)
            _log(f"{arch}: the other worker is done, two threads from step {step}")
        full = progress >= 1 - budget.full_share
        batch = budget.batch // 2 if full else budget.batch
        chosen = rng.choice(pairs, size=batch // 2, replace=len(pairs) < batch // 2)
        rows = np.stack([2 * chosen, 2 * chosen + 1], axis=1).ravel()
        size = synth.SIZE if full else budget.crop
        planes, masks, labels = _batch(pool, rows, rng, augment, size)
        for group in optimiser.param_groups:
            decay = 0.5 * (1 + np.cos(np.pi * progress))
            group["lr"] = budget.lr * min(1.0, (step + 1) / warm) * decay
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=budget.bf16):
            score, heat_logits = model(planes)
        loss = _loss(score.float(), heat_logits.float(), masks, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if fresh is not None:
            fresh.after_step(pool, step)
        if step % 200 == 0:
            elapsed = time.monotonic() - started
            _log(f"{arch} step {step}/{budget.steps} loss {loss.item():.4f} ({elapsed:.0f} s)")
        step += 1
    budget.done = step
    _log(f"{arch}: {step} steps in {time.monotonic() - started:.0f} s")
    model.eval()
    return model


# --- evaluation --------------------------------------------------------------------------------


class TwoViews(nn.Module):
    """How every model is scored, and what the ONNX file computes: the plane and its 180°
    rotation go through the model; the result is the mean of the two score logits and of the two
    probability maps (the rotated one turned back). Two views cost twice the inference time and
    average out part of the model's sensitivity to where a trace falls on its stride grid."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        both = torch.stack([x, torch.flip(x, dims=(2, 3))], dim=1).flatten(0, 1)
        score, heat_logits = self.model(both)
        maps = torch.sigmoid(heat_logits).unflatten(0, (-1, 2))
        turned_back = torch.flip(maps[:, 1], dims=(2, 3))
        return score.unflatten(0, (-1, 2)).mean(dim=1), (maps[:, 0] + turned_back) / 2


class _OneView(nn.Module):
    """The model on the plane alone, with its map as probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        score, heat_logits = self.model(x)
        return score, torch.sigmoid(heat_logits)


@torch.no_grad()
def predict(
    model: nn.Module, samples: list[synth.Sample], *, two_views: bool = True
) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Score logits and probability maps for full-size planes, through :class:`TwoViews`
    (``two_views=False``: the plane alone, for comparing the two)."""
    views = TwoViews(model).eval() if two_views else _OneView(model).eval()
    logits, maps = [], []
    for start in range(0, len(samples), 64):
        chunk = samples[start : start + 64]
        planes = torch.from_numpy(np.stack([s.plane for s in chunk])[:, None])
        score, heat_map = views(planes)
        logits.append(score.numpy())
        maps.extend(heat_map[:, 0].numpy())
    return np.concatenate(logits), maps


def fit_temperature(labels: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]) -> float:
    """The temperature minimising validation log-loss (grid search; calibration only)."""
    best, best_loss = 1.0, np.inf
    for temperature in np.exp(np.linspace(np.log(0.25), np.log(8), 41)):
        p = np.clip(sigmoid(logits / temperature), 1e-7, 1 - 1e-7)
        loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best


def evaluate(
    samples: list[synth.Sample], scores: np.ndarray[Any, Any], maps: list[Any], threshold: float
) -> dict[str, Any]:
    """Overall, per-family and per-modality metrics on a balanced set."""
    labels = np.array([s.tampered for s in samples])
    predicted = [heat.mask_of(m, synth.SIZE) for m in maps]
    result: dict[str, Any] = {
        "overall": _group(samples, labels, scores, predicted, threshold, np.ones(len(labels), bool))
    }
    negatives = ~labels
    result["families"] = {
        kind: _group(
            samples,
            labels,
            scores,
            predicted,
            threshold,
            np.array([s.family == kind for s in samples]) | negatives,
        )
        for kind in synth.FAMILIES
        if any(s.family == kind for s in samples)
    }
    result["benign"] = {
        kind: float(
            np.mean([scores[i] >= threshold for i, s in enumerate(samples) if s.family == kind])
        )
        for kind in synth.BENIGN
    }
    result["sources"] = _by_source(samples, labels, scores, predicted, threshold)
    modalities = sorted({s.modality for s in samples})
    result["modalities"] = {
        m: _group(
            samples,
            labels,
            scores,
            predicted,
            threshold,
            np.array([s.modality == m for s in samples]),
        )
        for m in modalities
    }
    return result


def _by_source(
    samples: list[synth.Sample],
    labels: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    predicted: list[Any],
    threshold: float,
) -> dict[str, dict[str, float]]:
    """The real studies' images and the phantoms apart: phantoms are most of every set, so
    the overall figures say little about real images, where a hospital uses the detector."""
    phantom = np.array([synth.is_phantom(s.modality) for s in samples])
    sources = {"real": ~phantom, "phantom": phantom}
    return {
        name: _group(samples, labels, scores, predicted, threshold, keep)
        for name, keep in sources.items()
        if keep.any()
    }


def _group(
    samples: list[synth.Sample],
    labels: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    predicted: list[Any],
    threshold: float,
    keep: np.ndarray[Any, Any],
) -> dict[str, float]:
    rows = np.nonzero(keep)[0]
    out = metrics.classification(labels[rows], scores[rows], threshold)
    out["detection_at_1pct_fa"] = metrics.detection_at_false_alarm(labels[rows], scores[rows])
    out.update(metrics.localisation([samples[i].mask for i in rows], [predicted[i] for i in rows]))
    out["tampered"] = float(labels[rows].sum())
    return out


# --- export ------------------------------------------------------------------------------------


def export(model: nn.Module, path: Path) -> None:
    example = torch.zeros(1, 1, synth.SIZE, synth.SIZE)
    torch.onnx.export(
        TwoViews(model).eval(),
        (example,),
        str(path),
        dynamo=False,
        input_names=["image"],
        output_names=["score_logit", "heat"],
        dynamic_axes={"image": {0: "batch"}, "score_logit": {0: "batch"}, "heat": {0: "batch"}},
        opset_version=17,
    )


def onnx_predict(
    model_dir: Path, samples: list[synth.Sample]
) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Calibrated scores and maps of an exported model (its ONNX file at its card's
    temperature), computed by the runtime :class:`Detector` on one thread, as ``scanseal
    screen`` computes them."""
    detector = Detector(model_dir)
    scores: list[np.ndarray[Any, Any]] = []
    maps: list[Any] = []
    for start in range(0, len(samples), 32):
        chunk = np.stack([s.plane for s in samples[start : start + 32]])
        score, heat_map = detector.score_planes(chunk)
        scores.append(score)
        maps.extend(heat_map)
    return np.concatenate(scores), maps


# --- the run -----------------------------------------------------------------------------------


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
        "input": {"name": "image", "shape": [None, 1, 224, 224], "dtype": "float32",
                  "range": [0.0, 1.0], "preprocess": "scanseal.ingest.preprocess(path, 224)"},
        "outputs": {"score_logit": "tampering logit per image, mean of the plane and its half "
                                   "turn; p = sigmoid(logit / temperature)",
                    "heat": "per-cell tampering probability, stride 4 (56x56), mean of both views"},
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


def fast_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where bfloat16
    autocast makes a training step about 1.6 times faster (bench/train_step.py); elsewhere
    it is emulated and slower, so training stays in float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


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
        _log(f"{name}: {measured['overall']}")
        side_path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    last = 0.0
    for family in synth.FAMILIES if args.steps_lofo else ():
        elapsed = time.monotonic() - run_started
        if elapsed + last > args.deadline_minutes * 60:
            _log(f"lofo {family}: skipped, past the {args.deadline_minutes}-minute budget")
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
        _log(f"lofo {family}: {results['lofo'][family]['held_out']}")
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

    _log("loading images")
    train_bases = _bases(args.seed, "train", args.phantoms, args.real_views)
    val, _ = held_out(args.seed, "val", args.phantoms)
    test, _ = held_out(args.seed, "test", args.phantoms)
    _log(f"pool of {args.pool} planes from {len(train_bases)} images")
    pool = build_pool(args.seed, train_bases, args.pool)
    per_base = len(synth.FAMILIES) + len(synth.BENIGN)
    results["data"] = {
        "train_images": len(train_bases), "real_views": args.real_views, "pool": args.pool,
        "val_samples": len(val), "test_samples": len(test),
        "val_images": len(val) // per_base, "test_images": len(test) // per_base,
        "test_modalities": sorted({s.modality for s in test}),
    }  # fmt: skip
    _log(f"data {results['data']}")
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
        _log(f"proposed_aug: {measured['overall']}")
        save()
        others = side.result()
    results["ablation"].update(others["ablation"])
    results["lofo"] = others["lofo"]
    results["total_seconds"] = time.monotonic() - run_started
    results["load_average"]["end"] = os.getloadavg()[0]
    save()
    _log("done")


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
