"""Fixtures for the ledger tests: the embedded chain, a real anvil node, and a cast of actors.

anvil comes from the contracts/ npm project (`make install-contracts`). It is started here as a
child process on 127.0.0.1 and a free port, and stopped by its PID.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scanseal.ledger import Ledger, LedgerConfig
from scanseal.ledger.devnode import ANVIL_FUNDER_KEY, anvil_binary, running_anvil

ROOT = Path(__file__).resolve().parents[2]


def missing_engine(what: str) -> None:
    """Skip on a developer machine without the npm project; fail in CI, where make installs it."""
    message = f"{what} is not installed: run `make install-contracts`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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
    """Each contract test runs on the embedded EVM and on a real anvil node."""
    return str(request.param)


ConfigFactory = Callable[..., LedgerConfig]


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


@dataclass
class Cast:
    """Everyone the contract distinguishes."""

    owner: LocalAccount
    admin: LocalAccount
    uploader: LocalAccount
    grantee: LocalAccount
    revoked: LocalAccount
    stranger: LocalAccount


@pytest.fixture
def cast() -> Cast:
    return Cast(*(Account.create() for _ in range(6)))


@dataclass
class World:
    """A deployed registry with roles, one stored record, one grant and one revoked grant."""

    ledger: Ledger
    cast: Cast
    cid: bytes
    hashes: tuple[bytes, bytes, bytes]


def card(account: LocalAccount) -> bytes:
    """A stand-in identity-card hash (the real one is SHA-256 of the signed card)."""
    return bytes.fromhex(account.address[2:]).rjust(32, b"\x01")


def new_cid() -> bytes:
    """A binary CIDv1 (raw, sha2-256) with a random digest."""
    return b"\x01\x55\x12\x20" + os.urandom(32)


def populate(ledger: Ledger, cast: Cast) -> tuple[bytes, tuple[bytes, bytes, bytes]]:
    """Roles, identities, one record granted to `grantee` and revoked from `revoked`."""
    ledger.set_admin(cast.owner, cast.admin.address)
    for actor in (cast.uploader, cast.grantee, cast.revoked):
        ledger.register_identity(cast.admin, actor.address, card(actor))
    ledger.authorize_uploader(cast.admin, cast.uploader.address)
    cid = new_cid()
    hashes = (os.urandom(32), os.urandom(32), os.urandom(32))
    ledger.store_record(cast.uploader, cid, *hashes)
    ledger.grant(cast.uploader, cid, cast.grantee.address)
    ledger.grant(cast.uploader, cid, cast.revoked.address)
    ledger.revoke(cast.uploader, cid, cast.revoked.address)
    return cid, hashes


@pytest.fixture
def world(make_config: ConfigFactory, cast: Cast) -> Iterator[World]:
    ledger = Ledger.open(make_config(), deployer=cast.owner)
    try:
        cid, hashes = populate(ledger, cast)
        yield World(ledger, cast, cid, hashes)
    finally:
        ledger.close()
