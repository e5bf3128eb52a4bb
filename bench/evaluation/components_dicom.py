"""Component: C-STORE to sealed and registered (bench/dicom.py).

bench/dicom.py writes its JSON (machine, date, load, one row per ledger mode and association
count) to the file named by --json; this section runs it and renders those rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation._common import bench_script, claim, num, shown_command, table

TITLE = "Components: DICOM ingest"
BUDGET_S = 120


def run(quick: bool, work: Path) -> dict[str, Any]:
    args = (
        ["--instances", "5", "--associations", "1", "--modes", "batched"]
        if quick
        else ["--instances", "200", "--associations", "1,4"]
    )
    out = work / "dicom.json"
    found, _stdout, seconds = bench_script("dicom.py", [*args, "--json", str(out)], out, 900)
    if not found.get("rows"):
        raise RuntimeError("bench/dicom.py wrote no rows")
    return {**found, "command": shown_command("dicom.py", args), "seconds": round(seconds, 1)}


def render(result: dict[str, Any], figures: Path) -> str:
    runs = result.get("runs") or result.get("rows") or result.get("results") or []
    rows = [
        (r.get("mode", result.get("mode", "–")), r.get("associations", "–"),
         f"{r.get('stored', '–')}/{r.get('instances', '–')}", num(r.get("series_seconds"), 1, "s"),
         num(r.get("instances_per_second"), 1), num(r.get("latency_p50_ms"), 0, "ms"),
         num(r.get("latency_p95_ms"), 0, "ms"))
        for r in runs
    ]  # fmt: skip
    return "\n".join(
        [
            f"Command: `{result['command']}`. A real `scanseal serve` with its Storage SCP; an "
            "instance counts once its C-STORE answer is Success, sent after it was screened, "
            "sealed, stored and registered; every stored manifest carries the screen's verdict "
            f"(policy `{result.get('screen', 'flag')}`).",
            "",
            table(["ledger mode", "associations", "stored", "series", "instances/s",
                   "C-STORE p50", "p95"], rows),
            "",
            "Design notes: docs/DICOM.md.",
        ]
    )  # fmt: skip


def claims(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The 200-instance series over one association, per ledger mode (no paper figure)."""
    rows = [r for r in result.get("rows") or [] if r.get("associations") == 1]
    return [
        claim(f"DICOM C-STORE to screened, sealed and registered, {row.get('mode')} ledger",
              "–", f"{num(row.get('instances_per_second'), 1)} instances/s, "
              f"{row.get('instances')}-instance series in {num(row.get('series_seconds'), 1)} s",
              None)
        for row in rows
    ]  # fmt: skip
