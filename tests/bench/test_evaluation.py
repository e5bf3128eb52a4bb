"""The evaluation cannot rot: `bench/evaluate.py --quick` runs every section for real here.

One subprocess per session (the `quick` fixture, tests/bench/conftest.py) runs the whole quick
evaluation into a scratch directory and checks docs/ was not touched; the tests then check that
every section measured something sane, rendered its table beside the paper's figures and wrote
its plots, and that a failed section makes the driver fail. Table 4 and the simulation have
their own files (test_table4_quick.py, test_simulation_quick.py) reading the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation_support import (
    ROOT,
    SECTIONS,
    docs_digest,
    png,
    section_result,
    section_text,
    stored,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_results_page_has_every_section_and_the_summary(quick: Path) -> None:
    text = (quick / "RESULTS.md").read_text()
    assert "## Summary: paper vs ScanSeal" in text
    assert "quick variant" in text
    for name in SECTIONS:
        assert f"## {stored(quick, name)['title']}" in text


def test_table1_detector(quick: Path) -> None:
    result = section_result(quick, "table1_detector")
    overall = result["fresh"]["overall"]
    assert result["fresh"]["samples"] >= 13 * 8
    assert 0.5 < overall["accuracy"] <= 1
    assert 0.5 < overall["auc"] <= 1
    assert set(result["ablation"]) == {"basic", "resnet", "proposed", "proposed_aug"}
    sources = result["fresh"]["sources"]
    per_image = result["fresh"]["families_per_image"] + result["fresh"]["benign_per_image"]
    assert sources["real"]["n"] == per_image * result["fresh"]["real_images"]
    assert sources["real"]["n"] + sources["phantom"]["n"] == overall["n"]
    assert sources["real"]["tampered"] + sources["phantom"]["tampered"] == overall["tampered"]
    claims = [c["what"] for c in result["claims"]]
    assert "false alarms on authentic real images" in claims
    text = section_text(quick, "Table 1: tamper detection (CNN authentication)")
    assert "99.2 %" in text
    assert "Real studies and phantoms apart" in text
    assert "paper: Proposed CNN Architecture" in text
    png(quick, "table1-roc.png")
    png(quick, "table1-families.png")


def test_table2_transfer(quick: Path) -> None:
    result = section_result(quick, "table2_transfer")
    systems = result["systems"]
    assert len(systems) == 5
    for name, row in systems.items():
        assert row["images_ok"] == result["images"], name
        assert row["transfer_s"] > 0, name
        assert row["throughput_MBps"] > 0, name
        assert row["e2e_s"] >= row["transfer_s"], name
    for name in ("blockchain-only", "ScanSeal per-record", "ScanSeal batched"):
        assert systems[name]["confirm_s"] > 0, name
    assert systems["DL-only"]["auth_ms"] > 0
    assert systems["plain HTTPS"]["auth_ms"] == 0
    text = section_text(quick, "Table 2: transfer of a 100-image CT study, five systems")
    assert "paper: proposed framework | 2.900" in text
    png(quick, "table2-transfer.png")


def test_table3_every_attack_blocked(quick: Path) -> None:
    result = section_result(quick, "table3_security")
    assert len(result["rows"]) >= 4
    for row in result["rows"]:
        assert row["attempts"] > 0, row
        assert row["blocked"] == row["attempts"], row
    text = section_text(quick, "Table 3: security trials")
    assert "500/500 (100.0 %)" in text
    assert "Immune" in text


def test_table5_resources(quick: Path) -> None:
    result = section_result(quick, "table5_resources")
    assert len(result["usage"]) == 5
    for name, usage in result["usage"].items():
        assert usage["cpu_s"] >= 0, name
        assert usage["peak_rss_mb"] >= 0, name
    servers = [n for n in result["usage"] if "node" in n or "gateway" in n]
    assert all(result["usage"][n]["peak_rss_mb"] > 10 for n in servers)
    assert result["usage"]["client: seal, upload, fetch, open"]["cpu_s"] > 0
    assert "paper RAM GB" in section_text(quick, "Table 5: resources per component")
    png(quick, "table5-resources.png")


def test_components(quick: Path) -> None:
    assert section_result(quick, "components_seal")["seal_MBps"] > 0
    assert section_result(quick, "components_storage")["embedded"]["put_mbps"] > 0
    ledger = section_result(quick, "components_ledger")
    assert any(r["measure"] == "per-record storeImage" for r in ledger["rows"])
    reading = section_text(quick, "Components: ledger")
    assert "* batched ≥ 2,000 records/s on anvil: **" in reading
    assert "* per-record ≥ 80 % of anvil's minimal-transaction rate in the same run: **" in reading
    gateway = section_result(quick, "components_gateway")
    assert all(r["gateway"]["success_rate"] == 1 for r in gateway["results"])
    dicom = section_result(quick, "components_dicom")
    assert dicom["rows"]
    assert all(r["stored"] == r["instances"] == r["screened"] for r in dicom["rows"])
    assert section_result(quick, "components_detect")["inference_1x224"]["median_ms"] > 0


def test_a_failed_section_is_shown_and_fails_the_run(tmp_path: Path) -> None:
    failed = {
        "section": "table1_detector", "title": "Table 1", "status": "failed",
        "error": "RuntimeError: the model file is unreadable", "result": {},
        "run": {"quick": True, "command": "python bench/evaluate.py --quick", "date": "today"},
    }  # fmt: skip
    (tmp_path / "table1_detector.json").write_text(json.dumps(failed))
    before = docs_digest()
    done = subprocess.run(
        [sys.executable, "bench/evaluate.py", "--render-only", "--only", "table1_detector",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert before == docs_digest()
    text = (tmp_path / "RESULTS.md").read_text()
    assert "**failed**: RuntimeError: the model file is unreadable" in text


def test_rendering_keeps_the_fuzzing_section_make_fuzz_wrote(tmp_path: Path) -> None:
    fuzzing = "## Fuzzing\n\n| target | inputs |\n| --- | ---: |\n| card | 100,000 |"
    old = f"# Results\n\n## Table 1: old\n\nstale\n\n{fuzzing}\n\n## Table 9: gone\n\nx\n"
    (tmp_path / "RESULTS.md").write_text(old)
    quick = {  # a quick run renders into --out, not docs/
        "section": "table1_detector", "title": "Table 1", "status": "ok", "result": {},
        "run": {"quick": True, "command": "python bench/evaluate.py --quick", "date": "today"},
    }  # fmt: skip
    (tmp_path / "table1_detector.json").write_text(json.dumps(quick))
    before = docs_digest()
    done = subprocess.run(
        [sys.executable, "bench/evaluate.py", "--render-only", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert before == docs_digest()
    text = (tmp_path / "RESULTS.md").read_text()
    assert fuzzing in text, done.stderr
    assert "stale" not in text
    assert "Table 9: gone" not in text


def test_unknown_section_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "bench/evaluate.py", "--only", "table9", "--render-only"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown section" in done.stderr
