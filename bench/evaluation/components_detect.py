"""Component: the tamper detector's inference speed on one core (bench/detect.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation._common import bench_script, claim, num, shown_command, table, verdict

TITLE = "Components: tamper detector speed"
BUDGET_S = 20


def run(quick: bool, work: Path) -> dict[str, Any]:
    args = ["--runs", "20" if quick else "300"]
    out = work / "detect.json"
    figures, _stdout, seconds = bench_script("detect.py", [*args, "--json", str(out)], out, 300)
    return {**figures, "command": shown_command("detect.py", args), "seconds": round(seconds, 1)}


def render(result: dict[str, Any], figures: Path) -> str:
    names = {
        "inference_1x224": "model inference, one 224×224 plane",
        "inference_batch32_per_image": "model inference in batches of 32, per image",
        "screen_file_512": "`Detector.screen` of a 512×512 16-bit PNG end to end",
    }
    rows = [
        (label, num(result.get(key, {}).get("median_ms"), 1, "ms"),
         num(result.get(key, {}).get("p95_ms"), 1, "ms"))
        for key, label in names.items()
    ]  # fmt: skip
    median = result.get("inference_1x224", {}).get("median_ms", float("inf"))
    return "\n".join(
        [
            f"Command: `{result['command']}`; model {result.get('model_version')}, onnxruntime "
            "with one intra-op thread.",
            "",
            table(["measurement", "median", "p95"], rows),
            "",
            f"Target ≤ 20 ms per 224×224 image on one core: {verdict(median <= 20)} "
            f"({num(median, 1)} ms).",
        ]
    )


def claims(result: dict[str, Any]) -> list[dict[str, Any]]:
    """ScanSeal's own speed target for the detector (the paper gives 85–88 ms per image)."""
    median = result.get("inference_1x224", {}).get("median_ms", float("inf"))
    return [claim("detector inference per 224×224 image, one core (target ≤ 20 ms)", "85–88 ms",
                  f"{num(median, 1)} ms", median <= 20)]  # fmt: skip
