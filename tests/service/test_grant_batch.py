"""Concurrent uploads share one grantAccessBatch; each still returns only once its own grants
are on chain, and one upload's refusal fails that upload alone."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scanseal.errors import NotFound
from scanseal.ledger import GrantState, Ledger, LedgerConfig, record_id
from scanseal.service._grants import GrantBatcher
from scanseal.storage import EmbeddedStore
from scanseal.transfer import Records

Setup = tuple[Ledger, LocalAccount, list[LocalAccount]]


def _cid() -> bytes:
    return b"\x01\x55\x12\x20" + os.urandom(32)  # a record of a batch: not stored on chain


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    admin = Account.create()
    ledger = Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=admin)
    readers = [Account.create() for _ in range(2)]
    for reader in readers:
        ledger.register_identity(
            admin, reader.address, bytes(12) + bytes.fromhex(reader.address[2:])
        )
    try:
        yield ledger, admin, readers
    finally:
        ledger.close()


def _batcher(
    ledger: Ledger, admin: LocalAccount, tmp_path: Path
) -> tuple[GrantBatcher, threading.RLock]:
    lock = threading.RLock()
    records = Records(ledger, EmbeddedStore(tmp_path / "blocks"), admin)

    def locked(work: Callable[[], None]) -> None:
        with lock:
            work()

    return GrantBatcher(ledger, records, locked), lock


def _run_together(
    calls: list[Callable[[], None]], batcher: GrantBatcher, lock: threading.RLock
) -> list[BaseException | None]:
    """Start every call while the ledger lock is held, let them all queue, then release it."""
    outcome: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            calls[i]()
        except BaseException as error:
            outcome[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(batcher._queue) < len(calls) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # one caller is flushing (waiting for this lock), the rest queued
    for thread in threads:
        thread.join(timeout=60)
    return outcome


def test_concurrent_uploads_share_transactions_and_reserve_each_record(
    setup, tmp_path: Path
) -> None:
    ledger, admin, readers = setup
    batcher, lock = _batcher(ledger, admin, tmp_path)
    records = [_cid() for _ in range(6)]
    accounts = [r.address for r in readers]
    calls = [lambda cid=cid: batcher.grant(cid, accounts) for cid in records]
    assert _run_together(calls, batcher, lock) == [None] * 6
    assert batcher.transactions <= 2  # the first caller's pairs, then everyone else's at once
    for cid in records:
        assert all(ledger.has_access(cid, account) for account in accounts)
        assert ledger._contract.view("isReserved", record_id(cid)) == (True,)


def test_one_refused_upload_fails_alone(setup: Setup, tmp_path: Path) -> None:
    ledger, admin, readers = setup
    batcher, lock = _batcher(ledger, admin, tmp_path)
    good, bad = [_cid() for _ in range(3)], _cid()
    stranger = Account.create().address  # no identity: the contract refuses a grant to it
    calls = [lambda cid=cid: batcher.grant(cid, [readers[0].address]) for cid in good]
    calls.append(lambda: batcher.grant(bad, [readers[1].address, stranger]))
    outcome = _run_together(calls, batcher, lock)
    assert outcome[:3] == [None] * 3
    assert isinstance(outcome[3], NotFound)
    assert all(ledger.has_access(cid, readers[0].address) for cid in good)
    assert not ledger.has_access(bad, readers[1].address)  # all or nothing for that upload


def test_granted_and_revoked_pairs_are_not_sent_again(setup: Setup, tmp_path: Path) -> None:
    ledger, admin, readers = setup
    batcher, _lock = _batcher(ledger, admin, tmp_path)
    cid = _cid()
    batcher.grant(cid, [readers[0].address, readers[1].address])
    ledger.revoke(admin, cid, readers[1].address)
    sent = batcher.transactions
    batcher.grant(cid, [readers[0].address, readers[1].address])  # an upload repeated
    assert batcher.transactions == sent
    assert ledger.grant_state(cid, readers[1].address) == GrantState.REVOKED


@pytest.fixture
def patient(setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GrantBatcher:
    """A batcher whose flush would wait 30 s for uploads under way: a test that ends sooner
    shows it waited only for those."""
    monkeypatch.setattr("scanseal.service._grants._LINGER_SECONDS", 30.0)
    return _batcher(setup[0], setup[1], tmp_path)[0]


def test_a_flush_waits_for_the_uploads_under_way(setup: Setup, patient: GrantBatcher) -> None:
    ledger, readers, batcher = setup[0], setup[2], patient
    first, second = _cid(), _cid()
    entered = threading.Event()

    def slower() -> None:
        with batcher.upload():
            entered.set()
            time.sleep(0.3)  # storing and registering
            batcher.grant(second, [readers[0].address])

    other = threading.Thread(target=slower)
    other.start()
    entered.wait(10)
    started = time.monotonic()
    with batcher.upload():
        batcher.grant(first, [readers[0].address])  # waits for the upload under way
    other.join(30)
    assert time.monotonic() - started < 15  # it waited for the other upload, not the bound
    assert batcher.transactions == 1
    assert ledger.has_access(first, readers[0].address)
    assert ledger.has_access(second, readers[0].address)


def test_a_lone_upload_and_an_abandoned_one_never_keep_a_flush_waiting(
    setup: Setup, patient: GrantBatcher
) -> None:
    readers, batcher = setup[2], patient
    with pytest.raises(RuntimeError), batcher.upload():
        raise RuntimeError("refused before its grants")  # e.g. a recipient not registered
    started = time.monotonic()
    with batcher.upload():
        batcher.grant(_cid(), [readers[0].address])
    assert time.monotonic() - started < 15
