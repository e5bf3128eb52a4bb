"""Write the measured tables into docs/MODEL.md: ``python -m scanseal.detect.training.report``.

Reads the metrics.json of a training run, copies it to docs/MODEL-metrics.json and replaces the
text between ``<!-- metrics:begin -->`` and ``<!-- metrics:end -->`` in docs/MODEL.md. Every
number in those tables comes from the run; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- metrics:begin -->", "<!-- metrics:end -->"
TARGETS = {"accuracy": 0.992, "auc": 0.998, "detection_at_1pct_fa": 0.95, "loc_f1": 0.80}
ROWS = [
    ("basic", "Basic CNN (3 layers)"),
    ("resnet", "ResNet-style baseline (from scratch)"),
    ("proposed", "Proposed CNN"),
    ("proposed_aug", "Proposed + augmentation (shipped)"),
]


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _mark(metric: str, value: float) -> str:
    target = TARGETS.get(metric)
    if target is None or value is None or math.isnan(value):
        return ""
    return "" if value >= target else " ✗"


def _ablation(results: dict[str, Any]) -> list[str]:
    lines = [
        "| model | steps | train s | accuracy | precision | recall | F1 | AUC "
        "| det. @1% FA | loc. F1 | IoU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    arch = results.get("args", {}).get("arch", "proposed")
    for key, label in ROWS:
        if key.startswith("proposed") and arch != "proposed":
            label = f"{label}, `{arch}` network"
        row = results["ablation"].get(key)
        if row is None:
            lines.append(f"| {label} | not run | | | | | | | | | |")
            continue
        o = row["overall"]
        lines.append(
            f"| {label} | {row['steps']} | {row['train_seconds']:.0f} "
            f"| {_pct(o['accuracy'])} | {_f(o['precision'])} | {_f(o['recall'])} "
            f"| {_f(o['f1'])} | {_f(o['auc'])} | {_pct(o['detection_at_1pct_fa'])} "
            f"| {_f(o['loc_f1'])} | {_f(o['iou'])} |"
        )
    return lines


def _groups(groups: dict[str, Any], title: str, recall_only: bool = False) -> list[str]:
    head = f"| {title} | n | tampered | accuracy | recall | AUC | det. @1% FA | loc. F1 | IoU |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for name, g in groups.items():
        accuracy = "" if recall_only else _pct(g["accuracy"]) + _mark("accuracy", g["accuracy"])
        detection = g["detection_at_1pct_fa"]
        lines.append(
            f"| {name} | {g['n']:.0f} | {g['tampered']:.0f} | {accuracy} "
            f"| {_pct(g['recall'])} | {_f(g['auc'])}{_mark('auc', g['auc'])} "
            f"| {_pct(detection)}{_mark('detection_at_1pct_fa', detection)} "
            f"| {_f(g['loc_f1'])}{_mark('loc_f1', g['loc_f1'])} | {_f(g['iou'])} |"
        )
    return lines


def _sources(shipped: dict[str, Any]) -> list[str]:
    """Real studies against phantoms, with the false alarms on each (runs before this table
    existed have no ``sources``)."""
    sources = shipped.get("sources")
    if not sources:
        return []
    alarms = " · ".join(f"{k} {_pct(v['false_alarm_rate'])}" for k, v in sources.items())
    return [
        "### Shipped model on real studies and on phantoms",
        "",
        *_groups(sources, "images"),
        "",
        f"False alarms on authentic images at the threshold: {alarms}.",
        "",
    ]


def _lofo(results: dict[str, Any]) -> list[str]:
    steps = results["ablation"].get("proposed_aug", {}).get("steps", 0)
    lines = [
        "| held-out family | steps | detection at val threshold | AUC vs authentic "
        f"| det. @1% FA | loc. F1 | shipped model ({steps} steps, family seen) |",
        "|---|---|---|---|---|---|---|",
    ]
    shipped = results["ablation"].get("proposed_aug", {}).get("families", {})
    for family, row in results.get("lofo", {}).items():
        if "held_out" not in row:
            lines.append(f"| {family} | not run ({row['skipped']}) | | | | | |")
            continue
        h = row["held_out"]
        seen = shipped.get(family, {}).get("recall", float("nan"))
        lines.append(
            f"| {family} | {row['steps']} | {_pct(h['recall'])} | {_f(h['auc'])} "
            f"| {_pct(h['detection_at_1pct_fa'])} | {_f(h['loc_f1'])} | {_pct(seen)} |"
        )
    return lines


def _run_line(results: dict[str, Any]) -> str:
    data = results["data"]
    total = results.get("total_seconds")
    duration = f"{total / 60:.1f} minutes" if total else "(run interrupted before the end)"
    return (
        f"Run: seed {results['seed']}, {data['train_images']} training images (real and "
        f"phantom), a pool of {data['pool']} training planes, {data['val_samples']} validation "
        f"and {data['test_samples']} test samples from {data['test_images']} held-out images; "
        f"whole run {duration} on 2 CPU cores{_load(results)}."
    )


def _load(results: dict[str, Any]) -> str:
    load = results.get("load_average")
    if not load:
        return ""
    return f" (load average {load['start']:.1f} at the start, {load['end']:.1f} at the end)"


def render(results: dict[str, Any]) -> str:
    shipped = results["ablation"]["proposed_aug"]
    o = shipped["overall"]
    benign = " · ".join(f"{k} {_pct(v)}" for k, v in shipped["benign"].items())
    verdict = " · ".join(
        f"{metric} {_f(o[metric])} (target {target}){'' if o[metric] >= target else ' — missed'}"
        for metric, target in TARGETS.items()
    )
    parts = [
        f"Shipped model on the held-out test split ({o['n']:.0f} images, "
        f"{o['tampered']:.0f} tampered), measured on the exported ONNX file at threshold "
        f"{shipped['threshold']:.4f} (temperature {shipped['temperature']:.3f}, both chosen on "
        "validation):",
        "",
        verdict,
        "",
        _run_line(results),
        "",
        "### Ablation (Table 1 of the paper, plus localisation)",
        "",
        *_ablation(results),
        "",
        "### Shipped model per tamper family (each family against all authentic images)",
        "",
        *_groups(shipped["families"], "family", recall_only=True),
        "",
        f"False alarms per benign change at the threshold: {benign}.",
        "",
        *_sources(shipped),
        "### Shipped model per modality",
        "",
        *_groups(shipped["modalities"], "modality"),
        "",
        "### Leave-one-family-out",
        "",
        *_lofo(results),
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="bench/out/detect-train/metrics.json")
    parser.add_argument("--card", default="docs/MODEL.md")
    args = parser.parse_args(argv)
    results = json.loads(Path(args.metrics).read_text())
    Path(args.card).with_name("MODEL-metrics.json").write_text(
        json.dumps(results, indent=2, default=float) + "\n"
    )
    card = Path(args.card).read_text()
    start, stop = card.index(BEGIN) + len(BEGIN), card.index(END)
    Path(args.card).write_text(card[:start] + "\n" + render(results) + "\n" + card[stop:])


if __name__ == "__main__":
    main()
