"""The Storage SCP's speed targets (docs/RESULTS.md, "Components: DICOM ingest") and the
verdict bench/scp_speed.py writes beside its rows; apart from the script so that reading it
(tests, the evaluation's DICOM section) imports nothing of the bench's own modules."""

from __future__ import annotations

from typing import Any, Final

TARGET_RATE: Final = 45.0
"""Instances/s the SCP must store (docs/RESULTS.md), beside at least half of Orthanc's rate."""


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """ScanSeal's rate against Orthanc's, per association count (the ratio is what load on a
    shared machine changes least), and whether the targets are met: at the most associations
    measured, at least TARGET_RATE instances/s and half of Orthanc's rate; more associations
    faster than the fewest."""
    rate = {(r["target"], r["associations"]): r["instances_per_second"] for r in rows}
    counts = sorted({r["associations"] for r in rows if r["target"] == "scanseal"})
    ratios = {
        str(n): round(rate["scanseal", n] / rate["orthanc", n], 3)
        for n in counts
        if ("orthanc", n) in rate
    }
    result: dict[str, Any] = {"scanseal_to_orthanc": ratios}
    if counts:
        most, fewest = counts[-1], counts[0]
        result["scanseal_instances_per_second"] = rate["scanseal", most]
        result["rate_met"] = rate["scanseal", most] >= TARGET_RATE
        result["half_of_orthanc_met"] = ratios.get(str(most), 0.0) >= 0.5
        result["more_associations_faster"] = (
            rate["scanseal", most] > rate["scanseal", fewest] if most != fewest else None
        )
    return result
