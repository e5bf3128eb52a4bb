"""`scanseal agent` and `scanseal serve` each hold their role's lock on $SCANSEAL_HOME: a second
one exits 5 at once, naming the holder's PID, before it unlocks or opens anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import scanseal._cli._common
import scanseal._cli.agent
from cli_support import one_error_line
from scanseal._lock import home_lock


@pytest.fixture
def forward(home: Path) -> Path:
    config = home / "agent.toml"
    config.write_text(
        '[forward]\ngateway = "http://127.0.0.1:9"\nidentity = "eve"\ndestination = "PACS@h:1"\n'
    )
    return config


@pytest.fixture
def no_unlocking(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(name: str | None) -> None:
        raise AssertionError(f"{name} unlocked while another process holds the lock")

    monkeypatch.setattr(scanseal._cli._common, "unlock", never)  # serve's [forward] agent
    monkeypatch.setattr(scanseal._cli.agent, "unlock", never)


def test_a_second_agent_is_refused_naming_the_holder(home: Path, run, forward, no_unlocking):
    with home_lock("agent"):
        result = run("agent", "--config", str(forward), "--once")
    assert result.code == 5, result.err
    assert one_error_line(result) == (
        f"error: scanseal agent is already running on {home} "
        f"(pid {os.getpid()}; lock {home / 'agent.lock'})"
    )
    assert not (home / "forward").exists()  # its state was not opened


def test_serve_with_forward_also_holds_the_agent_lock(home: Path, run, forward, no_unlocking):
    config = home / "serve.toml"
    config.write_text('[gateway]\nidentity = "gw"\n' + forward.read_text())
    with home_lock("agent"):
        result = run("serve", "--config", str(config))
    assert result.code == 5, result.err
    assert "scanseal agent is already running" in one_error_line(result)


def test_agent_status_needs_no_lock(home: Path, run, forward):
    with home_lock("agent"):
        result = run("agent", "--config", str(forward), "--status")
    assert result.code == 0, result.err
    assert result.out == "nothing yet\n"
