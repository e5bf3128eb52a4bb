"""The shipped systemd units (deploy/systemd/: the gateway, the agent, the nightly backup and
its timer) pass ``systemd-analyze verify`` without a warning, and the services rate "OK" in
``systemd-analyze security --offline=yes`` (exposure below 2).

The units name /opt/scanseal/bin/scanseal, which verify requires to exist: the copies checked
here name this machine's interpreter instead, and nothing else in them changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
NAMES = ["scanseal-gateway.service", "scanseal-agent.service", "scanseal-backup.service"]
pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _copy(name: str, tmp_path: Path) -> Path:
    text = (UNITS / name).read_text("utf-8")
    assert "/opt/scanseal/bin/scanseal " in text
    copy = tmp_path / name
    copy.write_text(text.replace("/opt/scanseal/bin/scanseal", sys.executable), "utf-8")
    return copy


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = ["systemd-analyze", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", NAMES)
def test_the_unit_verifies_without_a_warning(name: str, tmp_path: Path) -> None:
    unit = _copy(name, tmp_path)
    result = _analyze("verify", f"./{unit.name}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize("name", NAMES)
def test_the_unit_is_confined(name: str, tmp_path: Path) -> None:
    unit = _copy(name, tmp_path)
    result = _analyze("security", "--offline=yes", "--no-pager", f"./{unit.name}", cwd=tmp_path)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert found is not None, result.stdout[-2000:] + result.stderr
    assert float(found[1]) < 2.0, result.stdout
    assert found[2] == "OK"


def test_the_backup_timer_verifies(tmp_path: Path) -> None:
    _copy("scanseal-backup.service", tmp_path)
    timer = tmp_path / "scanseal-backup.timer"
    timer.write_text((UNITS / timer.name).read_text("utf-8"), "utf-8")
    result = _analyze("verify", f"./{timer.name}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_a_broken_unit_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a misspelt setting is a warning the test would see."""
    unit = _copy(NAMES[0], tmp_path)
    unit.write_text(unit.read_text("utf-8").replace("ProtectSystem=", "ProtectSistem="), "utf-8")
    result = _analyze("verify", f"./{unit.name}", cwd=tmp_path)
    assert "Unknown key" in result.stderr
