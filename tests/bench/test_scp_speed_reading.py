"""bench/scp_speed.py's verdict and the DICOM section's reading of it: ScanSeal's rate as a
share of Orthanc's in the same run, and the three targets, on both sides of each.

Rendering only (no measuring): rows as bench/scp_speed.py writes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

from evaluation import components_dicom as dicom
from evaluation.scp_targets import verdict


def _rows(scanseal: tuple[float, float], orthanc: tuple[float, float]) -> list[dict[str, object]]:
    return [
        {"target": target, "associations": n, "instances": 200, "stored": 200,
         "series_seconds": 200 / rate, "instances_per_second": rate, "cpu_ms_per_instance": 9.0,
         "load_average": [3.25, 2.0, 1.0]}
        for target, rates in (("scanseal", scanseal), ("orthanc", orthanc))
        for n, rate in zip((1, 4), rates, strict=True)
    ]  # fmt: skip


def test_the_verdict_holds_each_target_on_both_sides() -> None:
    met = verdict(_rows((30.0, 60.0), (100.0, 110.0)))
    assert met["scanseal_to_orthanc"] == {"1": 0.3, "4": 0.545}
    assert met["rate_met"]
    assert met["half_of_orthanc_met"]
    assert met["more_associations_faster"]
    short = verdict(_rows((30.0, 44.0), (100.0, 140.0)))
    assert not short["rate_met"]
    assert not short["half_of_orthanc_met"]
    assert not verdict(_rows((50.0, 48.0), (90.0, 90.0)))["more_associations_faster"]


def test_the_reading_shows_the_share_of_orthanc_and_each_rows_load() -> None:
    rows = _rows((20.0, 40.0), (100.0, 160.0))
    text = "\n".join(dicom._engines({"rows": rows, "verdict": verdict(rows), "command": "x"}))
    assert "ScanSeal's rate as a share of Orthanc's in the same run: 20% at 1, 25% at 4" in text
    assert "| scanseal | 4 | 200/200 | 5.00 s | 40.0 | 9.0 ms | – | 3.25 |" in text
    assert "**not met**" in text
