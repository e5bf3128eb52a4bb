"""Time the tamper detector on one CPU core, as sealing uses it.

    python bench/detect.py [--runs 300] [--json bench/out/detect.json] [--model-dir DIR]

Measures, with onnxruntime pinned to one intra-op thread:

* model inference alone on one 224×224 plane (the issue's target: at most 20 ms per image);
* a batch of 32 planes, per image;
* ``Detector.screen`` of a 512×512 16-bit DICOM-sized PNG end to end (decode, preprocess,
  inference, regions).

Reports the median and the 95th percentile of each; the machine description and the 1-minute
load average before and after are printed too. ``--model-dir`` times another exported model
(a retrained candidate, say) instead of the shipped one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from scanseal.detect import MODEL_DIR, Detector


def _timed(action: Callable[[], object], runs: int) -> list[float]:
    for _ in range(10):  # warm-up: allocations, caches
        action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _summary(times: list[float], per: int = 1) -> dict[str, float]:
    ordered = sorted(t / per for t in times)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def _machine() -> dict[str, object]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kib / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", type=Path, default=Path("bench/out/detect.json"))
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    detector = Detector(args.model_dir, threads=1)
    rng = np.random.default_rng(0)
    plane = rng.random((224, 224), dtype=np.float32)
    batch = rng.random((32, 224, 224), dtype=np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "scan.png"
        Image.fromarray((rng.random((512, 512)) * 4095).astype(np.uint16)).save(path)
        load_before = os.getloadavg()[0]
        results = {
            "machine": _machine(),
            "date": time.strftime("%Y-%m-%d"),
            "model_version": detector.version,
            "inference_1x224": _summary(
                _timed(lambda: detector.score_planes(plane[None]), args.runs)
            ),
            "inference_batch32_per_image": _summary(
                _timed(lambda: detector.score_planes(batch), max(args.runs // 10, 10)), per=32
            ),
            "screen_file_512": _summary(_timed(lambda: detector.screen(path), args.runs // 3)),
        }
        # A shared machine's load changes the figures: keep it beside them.
        results["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
