"""Component: per-record vs batched ledger throughput and gas (bench/ledger.py).

bench/ledger.py prints a markdown table (chain, measure, value); this section parses its rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evaluation._common import bench_script, claim, shown_command, table, verdict

TITLE = "Components: ledger"
BUDGET_S = 80
PAPER_TPS = 8.2


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


def render(result: dict[str, Any], figures: Path) -> str:
    rows = [(r["chain"], r["measure"], r["value"]) for r in result["rows"]]
    tps = _value(result["rows"], "anvil", "per-record storeImage")
    return "\n".join(
        [
            f"Command: `{result['command']}`.",
            "",
            table(["chain", "measure", "value"], rows, "llr"),
            "",
            f"Reading: per-record storeImage runs at {tps:,.0f} tx/s on anvil against the "
            f"paper's {PAPER_TPS} TPS ({verdict(tps >= PAPER_TPS)}); batched mode commits records "
            "with an inclusion proof each for one anchor transaction per batch. Why and how: "
            "docs/LEDGER.md.",
        ]
    )
