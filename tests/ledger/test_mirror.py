"""The access decision answered from the mirrored grant table must be exactly the contract's.

The random histories include hand-overs of records (`setController`), which change `hasAccess`
for the old and the new controller.

Every test compares the mirror with the contract itself (`hasAccess` and `grantOf` as calls on
the EVM), on the embedded chain and on anvil, including after transactions the Ledger object
never saw: sent by another party straight to the chain.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from scanseal.ledger import AccessType, Ledger, Reason, _abi, record_id

from .conftest import Cast, ConfigFactory, World, card, new_cid, populate

ZERO = "0x" + "00" * 20


def _contract_view(ledger: Ledger, rid: bytes, account: str) -> tuple[bool, int]:
    """What the contract itself answers, computed by the EVM."""
    (allowed,) = ledger._view("hasAccess", rid, account)
    (state,) = ledger._view("grantOf", rid, account)
    return bool(allowed), int(state)


def _mirror_view(ledger: Ledger, rid: bytes, account: str) -> tuple[bool, int]:
    return ledger._access.has_access(rid, account), ledger._access.grant_of(rid, account)


def _direct(w3: Web3, account: LocalAccount, contract: str, function: str, *args: Any) -> None:
    """A transaction sent to the chain by its own party, past every ScanSeal object."""
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tx = {
        "to": contract,
        "data": _abi.encode_call(function, *args),
        "gas": 200_000,
        "value": 0,
        "chainId": int(w3.eth.chain_id),
        "nonce": int(w3.eth.get_transaction_count(account.address)),
        "maxFeePerGas": 2 * base + 10**9,
        "maxPriorityFeePerGas": 1,
    }
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1


def _outside_w3(world: World, backend: str, request: pytest.FixtureRequest) -> Web3:
    """anvil: a separate connection, as another party's wallet would have. The embedded chain
    lives in this process, so another party can only reach it through its web3 object."""
    if backend == "anvil":
        return Web3(Web3.HTTPProvider(request.getfixturevalue("anvil_url")))
    return world.ledger.chain.w3


def test_mirror_equals_contract_through_random_histories(world: World) -> None:
    ledger, cast = world.ledger, world.cast
    people = [cast.uploader, cast.grantee, cast.revoked, cast.stranger]
    cids = [world.cid, new_cid(), new_cid()]
    for cid in cids[1:]:
        ledger.store_record(cast.uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
    accounts = [*(p.address for p in people), cast.admin.address, ZERO]

    def same_as_contract(cid: bytes) -> None:
        for account in accounts:
            expected = _contract_view(ledger, record_id(cid), account)
            assert _mirror_view(ledger, record_id(cid), account) == expected

    chooser = random.Random(5)
    for step in range(24):
        cid, who = chooser.choice(cids), chooser.choice(people[1:3])
        if step % 4 == 3:  # an admin hands the record over, to nobody or to a grantee or back
            heir = chooser.choice([cast.uploader.address, cast.grantee.address, None])
            ledger.set_controller(cast.admin, cid, heir)
        uploader_controls = ledger.controller_of(cid) == cast.uploader.address
        controllers = [cast.uploader, cast.admin] if uploader_controls else [cast.admin]
        if _contract_view(ledger, record_id(cid), who.address)[1] == 1:
            ledger.revoke(controllers[0], cid, who.address)
        else:
            ledger.grant(chooser.choice(controllers), cid, who.address)
        same_as_contract(cid)
    for cid in cids:
        same_as_contract(cid)


def test_direct_revoke_on_chain_is_seen_at_the_next_decision(
    world: World, backend: str, request: pytest.FixtureRequest
) -> None:
    ledger, cast = world.ledger, world.cast
    assert ledger.has_access(world.cid, cast.grantee.address)
    w3 = _outside_w3(world, backend, request)
    rid = record_id(world.cid)
    _direct(w3, cast.uploader, ledger.address, "revokeAccess", rid, cast.grantee.address)
    assert not ledger.has_access(world.cid, cast.grantee.address)
    assert _mirror_view(ledger, rid, cast.grantee.address) == (False, 2)
    _direct(w3, cast.uploader, ledger.address, "grantAccess", rid, cast.grantee.address)
    assert ledger.has_access(world.cid, cast.grantee.address)


def test_batched_decision_follows_a_direct_revoke(
    make_config: ConfigFactory, cast: Cast, backend: str, request: pytest.FixtureRequest
) -> None:
    with Ledger.open(make_config(), deployer=cast.owner) as setup:
        populate(setup, cast)
        setup.register_identity(cast.admin, cast.admin.address, card(cast.admin))
        setup.authorize_uploader(cast.admin, cast.admin.address)
    config = make_config(mode="batched", batch_size=1000)
    with Ledger.open(config, operator=cast.admin) as ledger:
        cid = new_cid()
        ledger.store_record(cast.admin, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        ledger.grant(cast.admin, cid, cast.grantee.address)
        first = ledger.log_access(cast.admin, cid, cast.grantee.address, AccessType.DOWNLOAD)
        assert first.allowed
        world = World(ledger, cast, cid, (b"", b"", b""))
        w3 = _outside_w3(world, backend, request)
        _direct(
            w3, cast.owner, ledger.address, "revokeAccess", record_id(cid), cast.grantee.address
        )
        after = ledger.log_access(cast.admin, cid, cast.grantee.address, AccessType.DOWNLOAD)
        assert (after.allowed, after.reason) == (False, Reason.REVOKED)
        stranger = ledger.log_access(cast.admin, cid, cast.stranger.address, AccessType.DOWNLOAD)
        assert (stranger.allowed, stranger.reason) == (False, Reason.NO_GRANT)
        nobody = ledger.log_access(cast.admin, cid, ZERO, AccessType.DOWNLOAD)
        assert not nobody.allowed
        # the uploader of a record that exists only in the batched log may open it
        assert ledger.log_access(cast.admin, cid, cast.admin.address).allowed


def test_mirror_rebuilds_when_the_chain_it_read_is_replaced(world: World) -> None:
    """A reorg, simulated: the block the mirror last read no longer has the hash it saw."""
    ledger, cast = world.ledger, world.cast
    assert ledger.has_access(world.cid, cast.grantee.address)
    mirror = ledger._access
    assert mirror._head is not None
    mirror._head = type(mirror._head)(mirror._head.number - 1, b"\x00" * 32)
    mirror._grants[(record_id(world.cid), cast.stranger.address)] = 1  # what a lost block said
    assert not ledger.has_access(world.cid, cast.stranger.address)
    assert ledger.has_access(world.cid, cast.grantee.address)


def test_new_account_has_no_access(world: World) -> None:
    assert not world.ledger.has_access(world.cid, Account.create().address)
