"""Component: C-STORE to sealed and registered (bench/dicom.py).

bench/dicom.py is being reworked to store machine, date, load and per-level rows; this renderer
reads defensively whatever list of runs the last JSON document it prints holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation._common import bench_script, last_json, num, shown_command, table

TITLE = "Components: DICOM ingest"
BUDGET_S = 60


def run(quick: bool, work: Path) -> dict[str, Any]:
    args = ["--instances", "5" if quick else "100", "--associations", "1" if quick else "1,4"]
    _json, stdout, seconds = bench_script("dicom.py", args, None, timeout=900)
    found = last_json(stdout)
    if not (found.get("runs") or found.get("rows") or found.get("results")):
        raise RuntimeError("bench/dicom.py printed no runs")
    return {"command": shown_command("dicom.py", args), "seconds": round(seconds, 1), **found}


def render(result: dict[str, Any], figures: Path) -> str:
    runs = result.get("runs") or result.get("rows") or result.get("results") or []
    rows = [
        (r.get("mode", result.get("mode", "–")), r.get("associations", "–"),
         f"{r.get('stored', '–')}/{r.get('instances', '–')}", num(r.get("seconds"), 1, "s"),
         num(r.get("instances_per_second"), 1), num(r.get("latency_p50_ms"), 0, "ms"),
         num(r.get("latency_p95_ms"), 0, "ms"))
        for r in runs
    ]  # fmt: skip
    return "\n".join(
        [
            f"Command: `{result['command']}`. A real `scanseal serve` with its Storage SCP; an "
            "instance counts once its C-STORE answer is Success, sent after it was screened, "
            "sealed, stored and registered.",
            "",
            table(["ledger mode", "associations", "stored", "series", "instances/s",
                   "C-STORE p50", "p95"], rows),
            "",
            "Design notes: docs/DICOM.md.",
        ]
    )  # fmt: skip
