"""Fixtures for the ledger tests: a cast of actors and a populated registry.

The backends (embedded EVM and a real anvil node) come from `make_config` in tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from engine_support import ConfigFactory
from scanseal.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


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
