"""Fixtures shared by every test directory: the two ledger backends.

The contract tests (tests/ledger) and the direct-call attacks (tests/security) both run once on
the embedded EVM and once on a real anvil node. anvil comes from the contracts/ npm project
(`make install-contracts`); it is started as a child process on 127.0.0.1 and a free port, once
per session, and stopped by its PID.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnode import ANVIL_FUNDER_KEY, anvil_binary, running_anvil
from engine_support import ConfigFactory, missing_engine
from scanseal.ledger import LedgerConfig


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A real anvil node for the whole session."""
    binary = anvil_binary()
    if binary is None:
        missing_engine("anvil")
    with running_anvil(binary) as url:
        yield url


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses the ledger through `make_config` runs on both backends."""
    return str(request.param)


@pytest.fixture
def make_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> ConfigFactory:
    """LedgerConfig for the current backend; keyword arguments override fields."""

    def build(**overrides: object) -> LedgerConfig:
        values: dict[str, object] = {"state_dir": tmp_path / "chain"}
        if backend == "anvil":
            url = request.getfixturevalue("anvil_url")
            values.update(backend="jsonrpc", url=url, funder_key=ANVIL_FUNDER_KEY)
        values.update(overrides)
        return LedgerConfig(**values)  # type: ignore[arg-type]

    return build
