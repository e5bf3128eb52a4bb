"""Shared fixtures for CLI tests: run ``scanseal`` in-process as its entry point does."""

from __future__ import annotations

import sys

import pytest

from cli_support import PASSPHRASE, Result
from scanseal.cli import main


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
        monkeypatch.setattr(sys, "argv", ["scanseal", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
