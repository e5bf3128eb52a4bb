"""One configuration for every command: $SCANSEAL_CONFIG reaches the ledger, typos exit 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import one_error_line

RECORD = "bafkreigfgrf42pqurg5qflobqx3ndrqscmkvh4p5jsthwkcwdjhgdnudee"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def test_the_ledger_honours_scanseal_config(home, run, monkeypatch, tmp_path, closed_port):
    other = tmp_path / "other.toml"
    other.write_text(f'[ledger]\nbackend = "jsonrpc"\nurl = "http://127.0.0.1:{closed_port}"\n')
    monkeypatch.setenv("SCANSEAL_CONFIG", str(other))
    result = run("audit", RECORD)
    assert result.code == 5, result.err
    assert f"127.0.0.1:{closed_port}" in one_error_line(result)


def test_a_misspelled_table_is_one_line_and_exit_2(home, run, monkeypatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    Path("typo.toml").write_text('[gatway]\nidentity = "gw"\n')
    result = run("serve", "--config", "typo.toml")
    assert result.code == 2, result.err
    assert one_error_line(result) == "error: typo.toml: unknown table [gatway]"


@pytest.mark.parametrize(
    "command",
    [
        ("audit", RECORD),
        ("storage", "status"),
        ("verify", RECORD),
        ("agent",),
    ],
)
def test_every_command_refuses_an_unknown_key(home, run, tmp_path: Path, command):
    config = tmp_path / "scanseal.toml"
    config.write_text("[storage]\nmin_replica = 2\n")
    result = run(*command, "--config", str(config))
    assert result.code == 2, result.err
    assert one_error_line(result) == f"error: {config}: unknown storage setting 'min_replica'"


def test_the_home_file_is_checked_too(home, run):
    (home / "scanseal.toml").write_text("[ledger]\ndurable = 'maybe'\n")
    result = run("audit", RECORD)
    assert result.code == 2, result.err
    assert "bad value for 'durable' in [ledger]: 'maybe' (not a boolean)" in one_error_line(result)
