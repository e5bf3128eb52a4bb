"""Helpers for CLI tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanseal.cli import main
from scanseal.crypto.identity import Keystore

FAST = 2**10  # scrypt cost for keystores made by tests; never the default
PASSPHRASE = "cli passphrase"


@dataclass
class Result:
    code: int
    out: str
    err: str


def one_error_line(result: Result) -> str:
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err + result.out
    return lines[0]


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Result:
    """Run ``scanseal ARGS`` in-process through ``scanseal.cli.main``, as the entry point does."""
    monkeypatch.setattr(sys, "argv", ["scanseal", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def card_files(home: Path, *names: str) -> dict[str, Path]:
    """Cheap identities in ``home``'s keystore and the card file a sender would be handed for
    each, ``home/NAME.card.json``."""
    store = Keystore(home / "keys", scrypt_n=FAST)
    paths = {}
    for name in names:
        paths[name] = home / f"{name}.card.json"
        paths[name].write_text(store.create(name, PASSPHRASE).card.to_json())
    return paths


def against_gateway(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    home: object,
    url: str,
    passphrase: str,
) -> Callable[..., Result]:
    """``scanseal ARGS`` in-process with ``home`` as ``$SCANSEAL_HOME`` and ``url`` as
    ``$SCANSEAL_GATEWAY_URL`` (wide columns: Rich tables keep one line per row)."""
    monkeypatch.setenv("SCANSEAL_HOME", str(home))
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", passphrase)
    monkeypatch.setenv("SCANSEAL_GATEWAY_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    return lambda *args: run_cli(monkeypatch, capsys, *args)
