"""The shipped Prometheus alerting rules (deploy/prometheus/) are valid, watch only series a
gateway exports (docs/OPERATIONS.md's metric table), and each fires when it should: ``promtool
check rules`` and ``promtool test rules`` over the shipped unit tests, when promtool is installed
(Debian's prometheus package, or ``$SCANSEAL_PROMTOOL``); the structure is checked without it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "scanseal.rules.yml"
UNIT_TESTS = ROOT / "deploy" / "prometheus" / "scanseal.rules.test.yml"
_SERIES = re.compile(r"\bscanseal_[a-z_]+")
_NOT_OURS = {"up", "probe_success"}  # Prometheus's own and the blackbox exporter's


def _alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text("utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _documented() -> set[str]:
    """Series names in docs/OPERATIONS.md's metric table (counters with their _total)."""
    table = (ROOT / "docs" / "OPERATIONS.md").read_text("utf-8").split("## Metrics", 1)[1]
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `scanseal_"):
            continue
        cell = row.split("|")[1]
        first, *more = re.findall(r"`([a-z_]+)`", cell)
        names.add(first)
        stem = first.removesuffix("_forwarded_total")  # the agent row: `_failed_total`, …
        names.update(stem + suffix for suffix in more)
    for name in list(names):
        if name.endswith("_seconds"):  # histograms
            names.update(f"{name}_{part}" for part in ("bucket", "sum", "count"))
    return names


def test_every_rule_is_a_complete_alert() -> None:
    alerts = _alerts()
    assert len(alerts) >= 10
    names = [rule["alert"] for rule in alerts]
    assert len(set(names)) == len(names)
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"].startswith("ScanSeal"), rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule
        assert rule["annotations"]["summary"], rule
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule


def test_rules_watch_only_exported_series() -> None:
    documented = _documented()
    watched = {name for rule in _alerts() for name in _SERIES.findall(rule["expr"])}
    assert watched, "no scanseal_ series in the rules"
    assert watched <= documented, sorted(watched - documented)
    for rule in _alerts():
        plain = re.findall(r"\b([a-z_]+)\{", rule["expr"])
        assert all(name.startswith("scanseal_") or name in _NOT_OURS for name in plain), rule


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text("utf-8"))
    assert tests["rule_files"] == [RULES.name]
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    untested = {rule["alert"] for rule in _alerts()} - tested
    # the disk forecast needs six hours of samples; its expression is checked by promtool
    assert untested <= {"ScanSealDiskFullInADay"}, sorted(untested)


def test_deploy_md_links_the_rules_and_the_health_answer() -> None:
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text("utf-8")
    section = deploy.split("### 1.11 What to monitor", 1)[1].split("\n## ", 1)[0]
    assert "deploy/prometheus/scanseal.rules.yml" in section
    assert "OPERATIONS.md" in section
    for rule in _alerts():
        assert rule["alert"] in section, f"{rule['alert']} is not explained in DEPLOY.md §1.11"


def _promtool() -> str:
    found = os.environ.get("SCANSEAL_PROMTOOL") or shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


@pytest.mark.parametrize(
    ("command", "target"), [("check", RULES), ("test", UNIT_TESTS)], ids=["check", "test"]
)
def test_promtool_accepts_the_rules(command: str, target: Path) -> None:
    done = subprocess.run(
        [_promtool(), command, "rules", target.name], cwd=target.parent,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout
