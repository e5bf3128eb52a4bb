"""Table 4's quick run against a real gateway: every level measured, counted from the ledger.

The figures come from the session's quick evaluation (tests/bench/conftest.py), as the driver
stored them as JSON and rendered them into RESULTS.md, so Table 4 is measured once per session.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evaluation_support import png, section_result, section_text

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

from evaluation import table4_scalability as table4

SLICE_BYTES = table4.SLICE * table4.SLICE * 2


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_measures_every_level_and_renders(quick: Path) -> None:
    result = section_result(quick, "table4_scalability")

    rows = result["rows"]
    assert [row["users"] for row in rows] == list(table4.QUICK_LEVELS)
    for row in rows:
        uploads = row["by_kind"]["upload"]["requests"]
        assert uploads == len(range(0, row["users"], table4.UPLOAD_EVERY))
        assert 0.0 <= row["success_rate"] <= 1.0
        assert row["ok"] == row["requests"], row["statuses"]
        assert row["denials_correct"] == row["denials_planned"]
        # every upload is one record entry and every fetch attempt one access entry, denied
        # ones included, and all of them were anchored on chain
        assert row["ledger_entries"] == row["requests"]
        assert row["ledger_entries_by_kind"]["record"] == uploads
        assert row["ledger_entries_by_kind"].get("access denied", 0) == row["denials_planned"]
        assert row["entries_anchored"]
        # each new record is granted to its uploader and one colleague, on chain (concurrent
        # uploads share grantAccessBatch transactions)
        assert row["chain_grants"] == 2 * uploads
        assert row["chain_txs_by_function"].get("grantAccessBatch", 0) <= uploads
        assert row["bytes_stored"] > uploads * SLICE_BYTES
        assert row["bytes_served"] > row["by_kind"]["fetch"]["requests"] * SLICE_BYTES
        assert 0 < row["p50"] <= row["p95"]
        assert row["ledger_entries_per_s"] > 0
        assert row["storage_mb_per_s"] > 0
    assert rows[-1]["denials_planned"] > 0
    # a quick run has no 500-user level: figures for the summary, but no reading
    assert [claim["met"] for claim in result["claims"]][:2] == [None, None]
    assert result["claims"][0]["scanseal"] == f"{rows[-1]['success_rate']:.1%}"

    # the driver rendered the section from the stored result, plots into img/results/
    text = section_text(quick, table4.TITLE)
    png(quick, "table4_scalability.png")
    assert "(img/results/table4_scalability.png)" in text
    for row in rows:
        assert f"| {row['users']:,} | {row['requests']:,} |" in text
