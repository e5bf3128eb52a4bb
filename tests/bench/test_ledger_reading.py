"""The ledger section's reading states the issue's two targets, computed from the bench's rows.

Rendering only (no measuring): rows as bench/ledger.py prints them, on both sides of each target.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

from evaluation import components_ledger as ledger

BATCHED = "* batched ≥ 2,000 records/s on anvil: "
SHARE = "* per-record ≥ 80 % of anvil's minimal-transaction rate in the same run: "


def _rows(batched: int, tps: int, minimal: int) -> list[dict[str, str]]:
    printed = [
        ("embedded py-evm", "batched, with proofs", "99999 records/s"),  # not anvil: ignored
        ("anvil", ledger.MINIMAL, f"{minimal} tx/s"),
        ("anvil", "per-record storeImage", f"{tps} tx/s"),
        ("anvil", "batched, with proofs", f"{batched} records/s"),
    ]
    return [{"chain": c, "measure": m, "value": v} for c, m, v in printed]


def _line(text: str, prefix: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix)


@pytest.mark.parametrize(
    ("batched", "tps", "minimal", "batched_met", "share_met"),
    [
        (2000, 80, 100, True, True),  # both exactly on the target
        (1999, 79, 100, False, False),  # both just below
        (18327, 251, 273, True, True),
        (2500, 200, 273, True, False),  # 73.3 %: a fast node does not excuse a slow contract
        (1500, 260, 273, False, True),
    ],
)
def test_reading_states_both_targets(
    tmp_path: Path, batched: int, tps: int, minimal: int, batched_met: bool, share_met: bool
) -> None:
    result = {"command": "python bench/ledger.py", "rows": _rows(batched, tps, minimal)}
    text = ledger.render(result, tmp_path)
    verdict = {True: "**met**", False: "**not met**"}
    assert _line(text, BATCHED) == f"{verdict[batched_met]} ({batched:,} records/s)"
    share = f"{100 * tps / minimal:.1f} %"
    assert _line(text, SHARE) == f"{verdict[share_met]} ({share}: {tps} of {minimal} tx/s)"


def test_reading_needs_the_minimal_transaction_row(tmp_path: Path) -> None:
    rows = [r for r in _rows(2000, 80, 100) if r["measure"] != ledger.MINIMAL]
    with pytest.raises(RuntimeError, match="minimal tx"):
        ledger.render({"command": "python bench/ledger.py", "rows": rows}, tmp_path)


def test_reading_puts_gas_beside_the_contract_before_its_hardening(tmp_path: Path) -> None:
    rows = [
        *_rows(2000, 80, 100),
        {"chain": "anvil", "measure": "gas per record, per-record", "value": "192792"},
        {"chain": "anvil", "measure": "gas per record, batched (1000/anchor)", "value": "98.7"},
    ]
    text = ledger.render({"command": "python bench/ledger.py", "rows": rows}, tmp_path)
    assert "192,792 per record against 186,148, 98.7 per batched entry against 98.6" in text
    without = ledger.render({"command": "x", "rows": _rows(2000, 80, 100)}, tmp_path)
    assert "Gas beside" not in without
