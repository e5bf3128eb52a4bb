"""`make demo` runs every scenario and checks each outcome itself; here it must simply finish."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanseal import demo


def test_demo_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    results, audit = demo.run(tmp_path)
    assert results.row_count == 10
    assert audit.row_count >= 10
    (times,) = [column for column in audit.columns if column.header == "time"]
    stamps = [str(cell) for cell in times.cells]
    assert len(stamps) == audit.row_count
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp) for stamp in stamps), stamps
