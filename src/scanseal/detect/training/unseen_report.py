"""The unseen-source figures as the Markdown tables of docs/MODEL.md (numbers only, no I/O)."""

from __future__ import annotations

import math
from typing import Any

COLUMNS = (
    ("images", "images", "{:.0f}"),
    ("n", "samples", "{:.0f}"),
    ("auc", "AUC", "{:.3f}"),
    ("detection_at_1pct_fa", "det. @1% FA", "{:.1%}"),
    ("recall", "recall", "{:.1%}"),
    ("false_alarm_rate", "false alarms", "{:.1%}"),
    ("loc_f1", "loc. F1", "{:.3f}"),
)


def _cell(value: Any, form: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return form.format(value)


def _table(title: str, rows: dict[str, dict[str, float]]) -> str:
    head = f"| {title} | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    lines = [head, rule]
    for name, row in rows.items():
        cells = " | ".join(_cell(row.get(key), form) for key, _, form in COLUMNS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def tables(result: dict[str, Any]) -> str:
    """The headline line and the per-source, per-family and per-modality tables."""
    run, overall = result["run"], result["overall"]
    head = (
        f"Model {run['model']} at threshold {run['threshold']:.5f}, seed {run['seed']}: "
        f"{run['images']} images of {len(run['sources'])} unseen sources, {run['samples']} "
        f"samples ({overall['tampered']:.0f} tampered). AUC {overall['auc']:.3f}, detection at "
        f"1% false alarms {overall['detection_at_1pct_fa']:.1%}, false alarms at the threshold "
        f"{overall['false_alarm_rate']:.1%} on authentic images "
        f"({result['false_alarms_untouched']:.1%} on untouched ones), recall "
        f"{overall['recall']:.1%}, localisation F1 {overall['loc_f1']:.3f}."
    )
    benign = " · ".join(f"{kind} {rate:.1%}" for kind, rate in result["benign"].items())
    return "\n\n".join(
        [
            head,
            _table("source", result["sources"]),
            _table("tamper family (vs all authentic)", result["families"]),
            _table("modality", result["modalities"]),
            f"False alarms per benign change at the threshold: {benign}.",
        ]
    )
