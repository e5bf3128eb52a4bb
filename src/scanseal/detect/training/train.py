"""Training the tamper detector in torch: batches from the pool, the loss, the training loop,
the two-view scoring every model is judged by, and the ONNX export.

:mod:`scanseal.detect.training.run` runs these for a whole seeded training run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from scanseal.detect.training import synth, warmstart
from scanseal.detect.training.nets import ARCHITECTURES
from scanseal.detect.training.sets import Pool, Refresher, crop_window

CROP = 64
FULL_SHARE = 0.25
"""The last quarter of the steps trains on whole 224×224 planes, so the image score (a global
max) is calibrated for the size it is used at; the rest uses cheaper ``CROP``-sized crops (more
steps per minute than larger ones, which bought more than the wider view on validation: see
docs/MODEL.md, "Choosing the recipe")."""


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


def log(message: str) -> None:
    """Print a progress line with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- batches ----------------------------------------------------------------------------------


def _batch(
    pool: Pool, rows: np.ndarray[Any, Any], rng: np.random.Generator, augment: bool, size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Rows come in pairs of one base image (benign row, tampered row): both members get the
    tampered row's window and the same geometric augmentation."""
    images, targets = [], []
    for pair in np.asarray(rows).reshape(-1, 2):
        y, x = crop_window(pool, int(pair[1]), rng, size)
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


# --- training ---------------------------------------------------------------------------------


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


def _schedule(optimiser: torch.optim.Optimizer, peak: float, progress: float) -> None:
    """Cosine decay of the learning rate from ``peak`` (after warm-up) over the run."""
    for group in optimiser.param_groups:
        group["lr"] = peak * 0.5 * (1 + np.cos(np.pi * progress))


def _model(arch: str, init: dict[str, Tensor] | None) -> nn.Module:
    """A new ``arch`` network, or one starting from ``init`` (fine-tuning: its batch norms
    kept fixed)."""
    model = ARCHITECTURES[arch]().to(memory_format=torch.channels_last)
    if init is not None:
        model.load_state_dict(init)
        warmstart.freeze_norms(model)
    return model


def train(
    arch: str,
    pool: Pool,
    budget: Budget,
    *,
    seed: int,
    augment: bool,
    exclude: str | None = None,
    widen: Event | None = None,
    fresh: Refresher | None = None,
    init: dict[str, Tensor] | None = None,
) -> nn.Module:
    """AdamW (weight decay 1e-4), warm-up then cosine decay over the budget's progress; the
    last quarter of the progress trains on whole planes. Sets ``budget.done``.

    Once ``widen`` is set (the other worker has finished), the rest trains on two threads.
    With ``fresh``, pairs of the pool are replaced by new ones as the steps go (the pool is
    changed in place). With ``init``, training starts from those weights (fine-tuning)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 11])
    model = _model(arch, init)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=budget.lr, weight_decay=1e-4)
    warm = max(1, budget.steps // 20)
    pairs = np.arange(len(pool.families) // 2)
    if exclude:
        pairs = pairs[pool.families[2 * pairs + 1] != exclude]
    model.train()
    if init is not None:
        warmstart.freeze_norms(model)
    started = time.monotonic()
    step = 0
    while (progress := budget.progress(step, time.monotonic() - started)) < 1:
        if widen is not None and widen.is_set() and torch.get_num_threads() < 2:
            torch.set_num_threads(2)
            log(f"{arch}: the other worker is done, two threads from step {step}")
        full = progress >= 1 - budget.full_share
        batch = budget.batch // 2 if full else budget.batch
        chosen = rng.choice(pairs, size=batch // 2, replace=len(pairs) < batch // 2)
        rows = np.stack([2 * chosen, 2 * chosen + 1], axis=1).ravel()
        size = synth.SIZE if full else budget.crop
        planes, masks, labels = _batch(pool, rows, rng, augment, size)
        _schedule(optimiser, budget.lr * min(1.0, (step + 1) / warm), progress)
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
            log(f"{arch} step {step}/{budget.steps} loss {loss.item():.4f} ({elapsed:.0f} s)")
        step += 1
    budget.done = step
    log(f"{arch}: {step} steps in {time.monotonic() - started:.0f} s")
    model.eval()
    return model


# --- scoring and export -----------------------------------------------------------------------


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


EXPORTED_INTERFACE: Final[dict[str, Any]] = {
    "input": {"name": "image", "shape": [None, 1, 224, 224], "dtype": "float32",
              "range": [0.0, 1.0], "preprocess": "scanseal.ingest.preprocess(path, 224)"},
    "outputs": {"score_logit": "tampering logit per image, mean of the plane and its half "
                               "turn; p = sigmoid(logit / temperature)",
                "heat": "per-cell tampering probability, stride 4 (56x56), mean of both views"},
}  # fmt: skip
"""The ``input`` and ``outputs`` blocks of a model card: what :func:`export` writes."""


def export(model: nn.Module, path: Path) -> None:
    """Write ``model`` as the ONNX file the runtime detector loads: scored through
    :class:`TwoViews`, any batch size, outputs ``score_logit`` and ``heat``."""
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


def fast_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where bfloat16
    autocast makes a training step about 1.6 times faster (bench/train_step.py); elsewhere
    it is emulated and slower, so training stays in float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False
