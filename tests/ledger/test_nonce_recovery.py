"""The ledger's kept nonce after its account was used from outside: on a real anvil node, a
transaction from the same key sent with another tool makes the kept nonce stale, and the next
anchor (batched mode) or record (per-record mode) re-reads the pending nonce and goes through."""

from __future__ import annotations

import os

import pytest

from devnode import spend_nonces
from scanseal.ledger import Ledger, RecordInput

from .conftest import Cast, ConfigFactory, new_cid, populate

pytestmark = pytest.mark.integration


@pytest.fixture
def backend() -> str:
    return "anvil"  # the embedded chain has no outside users


def _item() -> RecordInput:
    return RecordInput(new_cid(), os.urandom(32), os.urandom(32), os.urandom(32))


def test_the_next_anchor_recovers_the_nonce(make_config: ConfigFactory, cast: Cast, anvil_url):
    with Ledger.open(make_config(), deployer=cast.owner) as setup:
        populate(setup, cast)
    with Ledger.open(make_config(mode="batched"), operator=cast.admin) as ledger:
        ledger.store_records(cast.uploader, [_item()])
        assert ledger.anchor() is not None  # the operator's nonce is now kept
        spend_nonces(anvil_url, cast.admin, count=2)
        ledger.store_records(cast.uploader, [_item()])
        assert ledger.anchor() is not None
        assert ledger.anchor_count(cast.admin.address) == 2


def test_the_next_record_recovers_the_nonce(make_config: ConfigFactory, cast: Cast, anvil_url):
    with Ledger.open(make_config(), deployer=cast.owner) as ledger:
        populate(ledger, cast)
        spend_nonces(anvil_url, cast.uploader)
        item = _item()
        receipt = ledger.store_record(cast.uploader, item.cid, item.image_hash, item.h3,
                                      item.pixel_digest)  # fmt: skip
        assert receipt.tx_hash is not None
        assert ledger.verify_record(item.cid, item.image_hash, item.h3, item.pixel_digest)
