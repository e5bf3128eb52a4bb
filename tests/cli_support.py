"""Helpers for CLI tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

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
