"""The access mirror takes its own transactions' logs from their receipts, and nothing else.

A receipt stands in for reading its block back only when that block directly follows the
mirrored head and holds that one transaction. Every test here attacks that condition: a party
writing to the chain past this Ledger (before, between or in the same block as its own
transactions) must still be seen at the next decision, a revocation above all. The mirror is
compared with the contract itself after each step, on the embedded chain and on anvil.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from scanseal.errors import AccessDenied
from scanseal.ledger import Ledger, _abi, record_id

from .conftest import World, new_cid
from .test_mirror import _contract_view, _direct, _mirror_view, _outside_w3


def _count_log_reads(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Any]]:
    """Every eth_getLogs block range the ledger asks for."""
    reads: list[tuple[int, Any]] = []
    logs = ledger.chain.logs

    def counting(address: str, topics: list[Any], low: int, high: Any = "latest") -> Any:
        reads.append((low, high))
        return logs(address, topics, low, high)

    monkeypatch.setattr(ledger.chain, "logs", counting)
    return reads


def _same_as_contract(ledger: Ledger, cids: list[bytes], accounts: list[str]) -> None:
    for cid in cids:
        for account in accounts:
            rid = record_id(cid)
            assert _mirror_view(ledger, rid, account) == _contract_view(ledger, rid, account)


def test_own_transactions_are_applied_from_their_receipts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, cast = world.ledger, world.cast
    accounts = [cast.uploader.address, cast.grantee.address, cast.stranger.address]
    assert ledger.has_access(world.cid, cast.grantee.address)  # the mirror is at the head
    reads = _count_log_reads(ledger, monkeypatch)
    other = new_cid()
    ledger.store_record(cast.uploader, other, *world.hashes)
    ledger.grant(cast.uploader, other, cast.grantee.address)
    assert ledger.has_access(other, cast.grantee.address)
    ledger.revoke(cast.uploader, world.cid, cast.grantee.address)
    assert not ledger.has_access(world.cid, cast.grantee.address)
    with pytest.raises(AccessDenied):  # a reverted transaction moves the head too
        ledger.grant(cast.stranger, other, cast.stranger.address)
    ledger.set_controller(cast.admin, other, None)
    assert not ledger.has_access(other, cast.uploader.address)
    ledger.register_identity(cast.admin, cast.stranger.address, bytes(32 * [9]))
    assert ledger.identity_of(cast.stranger.address) == bytes(32 * [9])
    assert reads == []  # not one block read back
    assert ledger._access._head is not None
    assert ledger._access._head.hash == ledger.chain.head()[1]
    _same_as_contract(ledger, [world.cid, other], accounts)


def test_a_revoke_by_another_party_before_an_own_transaction_is_seen(
    world: World, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The own transaction's block does not follow the mirrored head: its receipt is not
    taken, and the next decision reads both blocks."""
    ledger, cast = world.ledger, world.cast
    assert ledger.has_access(world.cid, cast.grantee.address)
    reads = _count_log_reads(ledger, monkeypatch)
    w3 = _outside_w3(world, backend, request)
    rid = record_id(world.cid)
    _direct(w3, cast.admin, ledger.address, "revokeAccess", rid, cast.grantee.address)
    ledger.grant(cast.uploader, world.cid, cast.revoked.address)  # the block after it
    assert not ledger.has_access(world.cid, cast.grantee.address)
    assert ledger.has_access(world.cid, cast.revoked.address)
    assert len(reads) == 1
    _same_as_contract(ledger, [world.cid], [cast.grantee.address, cast.revoked.address])


def test_a_revoke_in_the_same_block_as_an_own_transaction_is_seen(
    world: World, backend: str, request: pytest.FixtureRequest
) -> None:
    """One block, two transactions: the own receipt holds only its own logs, so it is not
    taken for the block's, and the revocation beside it is read from the chain."""
    ledger, cast = world.ledger, world.cast
    rid = record_id(world.cid)
    assert ledger.has_access(world.cid, cast.grantee.address)
    w3 = _outside_w3(world, backend, request)
    with _one_block(ledger, backend, w3):
        foreign = _send_unmined(w3, cast.admin, ledger.address, "revokeAccess", rid,
                                cast.grantee.address)  # fmt: skip
        args = [rid, cast.revoked.address]
        tx, own = ledger._contract.send(cast.uploader, "grantAccess", args)
    ledger._contract.settle(cast.uploader, tx, own, rid, "grant access")
    mined = [w3.eth.get_transaction_receipt(h)["blockHash"] for h in (foreign, own)]
    assert mined[0] == mined[1]  # the attack needs both in one block
    assert not ledger.has_access(world.cid, cast.grantee.address)
    assert ledger.has_access(world.cid, cast.revoked.address)
    _same_as_contract(ledger, [world.cid], [cast.grantee.address, cast.revoked.address])


def test_an_identity_changed_by_another_party_is_seen_after_its_block(
    world: World, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, cast = world.ledger, world.cast
    first = ledger.identity_of(cast.grantee.address)
    assert first is not None
    reads = _count_identity_reads(ledger, monkeypatch)
    changed = bytes(32 * [0x5A])
    w3 = _outside_w3(world, backend, request)
    # the owner alone may change a registered card; sent past this Ledger
    _direct(w3, cast.owner, ledger.address, "registerIdentity", cast.grantee.address, changed)
    assert ledger.identity_of(cast.grantee.address) == changed
    assert ledger.identity_of(cast.grantee.address) == changed
    assert reads == []  # the event carried the new card hash: no call, and none stale


def test_an_identity_registered_through_a_second_ledger_is_seen(
    world: World, backend: str, make_config: Any
) -> None:
    """Another gateway on the same node (anvil), or a reader of the embedded chain's journal
    in another process (the embedded chain has one writer): each sees the other's change."""
    ledger, cast = world.ledger, world.cast
    if backend == "anvil":
        other = Ledger.open(make_config())
        writer, reader = other, ledger
    else:
        other = Ledger.open(make_config(), read_only=True)
        writer, reader = ledger, other
    with other:
        assert reader.identity_of(cast.stranger.address) is None  # remembered as unregistered
        assert reader.identity_of(cast.uploader.address) is not None
        writer.register_identity(cast.admin, cast.stranger.address, bytes(32 * [3]))
        changed = [cast.uploader.address, bytes(32 * [4])]  # the owner alone may change it
        writer._contract.transact(cast.owner, "registerIdentity", b"", changed, "re-register")
        if backend != "anvil":
            reader.chain.follow()  # type: ignore[attr-defined]
        assert reader.identity_of(cast.stranger.address) == bytes(32 * [3])
        assert reader.identity_of(cast.uploader.address) == bytes(32 * [4])


# ---------------------------------------------------------------- helpers


def _count_identity_reads(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    view = ledger._contract.view

    def counting(function: str, *args: Any) -> tuple[Any, ...]:
        if function == "identityOf":
            reads.append(str(args[0]))
        return view(function, *args)

    monkeypatch.setattr(ledger._contract, "view", counting)
    return reads


def _send_unmined(
    w3: Web3, account: LocalAccount, contract: str, function: str, *args: Any
) -> bytes:
    """A transaction of another party, submitted and not waited for."""
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tx = {"to": contract, "data": _abi.encode_call(function, *args), "gas": 200_000,
          "value": 0, "chainId": int(w3.eth.chain_id),
          "nonce": int(w3.eth.get_transaction_count(account.address, "pending")),
          "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 1}  # fmt: skip
    return bytes(w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))


@contextmanager
def _one_block(ledger: Ledger, backend: str, w3: Web3) -> Iterator[None]:
    """Transactions submitted inside are mined together, in one block, on leaving."""
    if backend == "anvil":
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            yield
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        finally:
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        return
    tester = ledger.chain._tester  # type: ignore[attr-defined]
    tester.disable_auto_mine_transactions()
    try:
        yield
        tester.mine_blocks(1)
    finally:
        tester.enable_auto_mine_transactions()
