"""`make demo` runs every scenario and checks each outcome itself; here it must simply finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanseal import demo


def test_demo_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    results, audit = demo.run(tmp_path)
    assert results.row_count == 10
    assert audit.row_count >= 10
