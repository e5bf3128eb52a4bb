"""Helpers for tests that need an engine from the npm projects (anvil, solc-js)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from scanseal.ledger import LedgerConfig

ConfigFactory = Callable[..., LedgerConfig]
"""The `make_config` fixture (tests/conftest.py): a LedgerConfig for the current backend."""


def missing_engine(what: str) -> None:
    """Skip on a developer machine without the npm project; fail in CI, where make installs it."""
    message = f"{what} is not installed: run `make install-contracts`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
