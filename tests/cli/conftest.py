"""Shared fixtures for CLI tests: run ``scanseal`` in-process as its entry point does."""

from __future__ import annotations

import pytest

from cli_support import PASSPHRASE, Result, run_cli


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("COLUMNS", "200")  # keep Rich tables on one line per row
    return tmp_path


@pytest.fixture
def run(monkeypatch, capsys):
    """Run ``scanseal ARGS`` in-process through ``scanseal.cli.main``, as the entry point does."""

    def invoke(*args: str) -> Result:
        return run_cli(monkeypatch, capsys, *args)

    return invoke
