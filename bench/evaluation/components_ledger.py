"""Component: per-record vs batched ledger throughput and gas (bench/ledger.py).

bench/ledger.py prints a markdown table (chain, measure, value); this section parses its rows.
The reading states the Ledger issue's two targets, computed from those rows: batched mode at
2,000 records/s or more on anvil, and per-record storeImage at 80 % or more of the rate anvil
reaches for minimal transactions in the same run (the node's own ceiling on this machine).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evaluation._common import bench_script, claim, pct, shown_command, table, verdict

TITLE = "Components: ledger"
BUDGET_S = 80
PAPER_TPS = 8.2
BATCHED_TARGET = 2000  # records/s on anvil, batched with proofs
SHARE_TARGET = 0.80  # per-record storeImage rate over anvil's minimal-transaction rate
MINIMAL = "minimal tx (21,000-gas transfer)"


def run(quick: bool, work: Path) -> dict[str, Any]:
    if quick:
        args = ["--records", "20", "--embedded-records", "10", "--batched", "400",
                "--batch-size", "100"]  # fmt: skip
    else:
        args = ["--records", "300", "--embedded-records", "100", "--batched", "10000"]
    _json, stdout, seconds = bench_script("ledger.py", args, None, timeout=600)
    rows = [
        {"chain": m[1].strip(), "measure": m[2].strip(), "value": m[3].strip()}
        for m in re.finditer(r"^\| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", stdout, re.MULTILINE)
        if m[1].strip() not in {"chain", "---"}
    ]
    if not rows:
        raise RuntimeError("bench/ledger.py printed no result rows")
    tps = _value(rows, "anvil", "per-record storeImage")
    batched = _value(rows, "anvil", "batched, with proofs")
    return {
        "command": shown_command("ledger.py", args),
        "seconds": round(seconds, 1),
        "rows": rows,
        "claims": [
            claim("chain transactions per second, per record (anvil)", f"{PAPER_TPS} TPS",
                  f"{tps:,.0f} tx/s", tps >= PAPER_TPS),
            claim("chain records per second, batched with proofs (anvil)", f"{PAPER_TPS} TPS",
                  f"{batched:,.0f} records/s", batched >= PAPER_TPS),
        ],
    }  # fmt: skip


def _value(rows: list[dict[str, str]], chain: str, measure: str) -> float:
    for row in rows:
        if row["chain"] == chain and row["measure"] == measure:
            return float(row["value"].split()[0].replace(",", ""))
    raise RuntimeError(f"bench/ledger.py printed no row {chain!r} / {measure!r}")


def targets(rows: list[dict[str, str]]) -> list[str]:
    """The issue's two targets as "target: met/not met (value)", from the anvil rows."""
    batched = _value(rows, "anvil", "batched, with proofs")
    tps = _value(rows, "anvil", "per-record storeImage")
    minimal = _value(rows, "anvil", MINIMAL)
    share = tps / minimal
    return [
        f"batched ≥ {BATCHED_TARGET:,} records/s on anvil: "
        f"{verdict(batched >= BATCHED_TARGET)} ({batched:,.0f} records/s)",
        f"per-record ≥ {pct(SHARE_TARGET, 0)} of anvil's minimal-transaction rate in the same "
        f"run: {verdict(share >= SHARE_TARGET)} ({pct(share)}: {tps:,.0f} of {minimal:,.0f} tx/s)",
    ]


def render(result: dict[str, Any], figures: Path) -> str:
    rows = [(r["chain"], r["measure"], r["value"]) for r in result["rows"]]
    tps = _value(result["rows"], "anvil", "per-record storeImage")
    return "\n".join(
        [
            f"Command: `{result['command']}`.",
            "",
            table(["chain", "measure", "value"], rows, "llr"),
            "",
            "Reading: the ledger's targets on this machine:",
            "",
            *(f"* {line}" for line in targets(result["rows"])),
            "",
            f"Per-record storeImage runs at {tps:,.0f} tx/s on anvil against the paper's "
            f"{PAPER_TPS} TPS ({verdict(tps >= PAPER_TPS)}); batched mode commits records with an "
            "inclusion proof each for one anchor transaction per batch. Why and how: "
            "docs/LEDGER.md.",
            *_gas_before(result["rows"]),
        ]
    )


GAS_BEFORE_HARDENING = (186_148, 98.6)
"""Gas per record (per-record mode) and per batched entry on anvil before the contract was
hardened (signed claims, stored reporters, controllers), as `make bench` measured them at
commit 9a5e159; the reading puts today's beside them."""


def _gas_before(rows: list[dict[str, Any]]) -> list[str]:
    """The paragraph on gas, when the run measured it on anvil (else nothing)."""
    measures = {(row["chain"], row["measure"]) for row in rows}
    if not {("anvil", _GAS_RECORD), ("anvil", _GAS_BATCHED)} <= measures:
        return []
    per_record = _value(rows, "anvil", _GAS_RECORD)
    batched = _value(rows, "anvil", _GAS_BATCHED)
    record_before, batched_before = GAS_BEFORE_HARDENING
    return [
        "",
        f"Gas beside the contract before its hardening (commit 9a5e159): {per_record:,.0f} per "
        f"record against {record_before:,}, {batched:,.1f} per batched entry against "
        f"{batched_before} (the record bound to its uploader's signature costs the difference; "
        "docs/LEDGER.md).",
    ]


_GAS_RECORD = "gas per record, per-record"
_GAS_BATCHED = "gas per record, batched (1000/anchor)"
