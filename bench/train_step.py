"""Time one training step of the shipped architecture, as `make train` runs it.

    .venv-train/bin/python bench/train_step.py [--steps 20]

Needs the ``train`` extra (torch): run it with the training venv that `make train` creates.
Times a full AdamW step (forward, the training loss, backward, update) of the ``proposed``
network on a batch of 32 crops of the training run's size (``train.CROP``), for each memory
layout (contiguous NCHW, channels-last) and one or two intra-op threads in float32, then in
channels-last under bfloat16 autocast (the forward pass; the fixed filters, loss and update stay
float32), and a whole-plane step (16 planes of 224×224) in both precisions; the training run
uses channels-last and bfloat16 where the CPU has it natively, one thread per worker while both
workers train and two for the shipped model once the side worker is done. Prints the median
seconds per step of each configuration and the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from scanseal.detect.training.nets import ARCHITECTURES  # noqa: E402
from scanseal.detect.training.synth import SIZE  # noqa: E402
from scanseal.detect.training.train import CROP, _loss  # noqa: E402

BATCH = 32


def seconds_per_step(
    channels_last: bool,
    threads: int,
    steps: int,
    *,
    bf16: bool = False,
    side: int = CROP,
    batch: int = BATCH,
) -> float:
    """Median wall-clock seconds of one optimiser step after five warm-up steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = ARCHITECTURES["proposed"]().to(memory_format=layout)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    planes = torch.rand(batch, 1, side, side).contiguous(memory_format=layout)
    masks = (torch.rand(batch, 1, side, side) > 0.9).float()
    labels = (torch.rand(batch) > 0.5).float()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            score, heat = model(planes)
        loss = _loss(score.float(), heat.float(), masks, labels)  # the training run's loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for channels_last in (False, True):
        for threads in (1, 2):
            seconds = seconds_per_step(channels_last, threads, args.steps)
            layout = "channels-last" if channels_last else "contiguous"
            print(f"{layout:>13}, {threads} thread(s): {seconds:.3f} s per step of {BATCH} crops")
    for threads in (1, 2):
        seconds = seconds_per_step(True, threads, args.steps, bf16=True)
        print(f"bfloat16, channels-last, {threads} thread(s): {seconds:.3f} s per crop step")
    for bf16 in (False, True):
        for threads in (1, 2):
            seconds = seconds_per_step(True, threads, 5, bf16=bf16, side=SIZE, batch=16)
            name = "bfloat16" if bf16 else "float32"
            print(f"{name}, {threads} thread(s): {seconds:.3f} s per step of 16 whole planes")
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
