"""[ledger] in scanseal.toml, overridden by SCANSEAL_LEDGER_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanseal.errors import InvalidInput
from scanseal.ledger import LedgerConfig


def test_defaults_are_embedded_per_record_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    config = LedgerConfig.load(env={})
    assert (config.backend, config.mode, config.state_dir) == (
        "embedded",
        "per-record",
        tmp_path / "chain",
    )


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    (tmp_path / "scanseal.toml").write_text(
        '[ledger]\nbackend = "jsonrpc"\nurl = "http://127.0.0.1:8545"\nmode = "batched"\n'
        'batch_size = 64\nbatch-seconds = 2\nstate_dir = "~/elsewhere"\n'
    )
    config = LedgerConfig.load(
        env={"SCANSEAL_LEDGER_BATCH_SIZE": "128", "SCANSEAL_LEDGER_DURABLE": "yes"}
    )
    assert config.durable
    assert (config.backend, config.url, config.mode) == (
        "jsonrpc",
        "http://127.0.0.1:8545",
        "batched",
    )
    assert (config.batch_size, config.batch_seconds) == (128, 2.0)
    assert config.state_dir == Path("~/elsewhere").expanduser()


def test_explicit_file_and_funder_only_from_env(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text('[ledger]\nmode = "batched"\n')
    config = LedgerConfig.load(path, env={"SCANSEAL_LEDGER_FUNDER_KEY": "0x01"})
    assert (config.mode, config.funder_key) == ("batched", "0x01")
    assert "0x01" not in repr(config)
    path.write_text('[ledger]\nfunder_key = "0x01"\n')
    with pytest.raises(InvalidInput, match="unknown ledger setting"):
        LedgerConfig.load(path, env={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('backend = "ganache"', "backend must be"),
        ('backend = "jsonrpc"', "needs a url"),
        ('mode = "sometimes"', "mode must be"),
        ("batch_size = 0", "must be positive"),
        ('batch_size = "many"', "batch_size"),
        ("colour = 1", "unknown ledger setting"),
        ('durable = "maybe"', "not a boolean"),
        (f"timeout = {10**400}", "timeout"),  # an int float() cannot hold
    ],
)
def test_bad_settings_are_invalid_input(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"[ledger]\n{toml}\n")
    with pytest.raises(InvalidInput, match=message):
        LedgerConfig.load(path, env={})


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        LedgerConfig.load(tmp_path / "nope.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[ledger\n")
    with pytest.raises(InvalidInput, match="cannot read"):
        LedgerConfig.load(broken, env={})
