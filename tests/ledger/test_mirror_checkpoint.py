"""The grant-table mirror's checkpoint: a restart reads only the blocks after it, never from the
first block while it is valid; a checkpoint that is not canonical any more, or unreadable, is
rebuilt from the chain; the table after a restart is still exactly the contract's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scanseal.ledger import Ledger, LedgerConfig, record_id

from .conftest import Cast, ConfigFactory, new_cid, populate


def _checkpoint(config: LedgerConfig) -> Path:
    (path,) = Path(config.state_dir).glob("mirror-*.sqlite3")
    return path


def _same_as_contract(ledger: Ledger, cids: list[bytes], cast: Cast) -> None:
    accounts = [cast.uploader, cast.grantee, cast.revoked, cast.stranger, cast.admin]
    for cid in cids:
        for account in accounts:
            (allowed,) = ledger._view("hasAccess", record_id(cid), account.address)
            (state,) = ledger._view("grantOf", record_id(cid), account.address)
            assert ledger.has_access(cid, account.address) == bool(allowed)
            assert ledger.grant_state(cid, account.address) == int(state)


def _first_run(make_config: ConfigFactory, cast: Cast) -> tuple[list[bytes], int]:
    """A populated registry whose mirror was checkpointed at some head, then a revoke and a new
    record the checkpoint does not hold (no decision was made after them)."""
    with Ledger.open(make_config(), deployer=cast.owner) as ledger:
        cid, hashes = populate(ledger, cast)
        ledger.catch_up()
        checkpointed = ledger.chain.head()[0]
        ledger._access._saved_at = float("inf")  # no further save until close()
        ledger._access.close()  # ... nor at close: the checkpoint stays at `checkpointed`
        ledger.revoke(cast.uploader, cid, cast.grantee.address)
        other = new_cid()
        ledger.store_record(cast.uploader, other, *hashes)
        ledger.grant(cast.uploader, other, cast.revoked.address)
    return [cid, other], checkpointed


def test_restart_reads_only_the_blocks_after_the_checkpoint(
    make_config: ConfigFactory, cast: Cast
) -> None:
    cids, checkpointed = _first_run(make_config, cast)
    with Ledger.open(make_config()) as ledger:
        assert not ledger.ready
        ledger.catch_up()
        assert ledger.ready
        head = ledger.chain.head()[0]
        assert ledger._access.blocks_read == head - checkpointed  # not from block 0
        _same_as_contract(ledger, cids, cast)
        assert not ledger.has_access(cids[0], cast.grantee.address)  # the revoke after it
    with Ledger.open(make_config()) as ledger:  # saved at close: nothing left to read
        ledger.catch_up()
        assert ledger._access.blocks_read == 0
        _same_as_contract(ledger, cids, cast)


def test_checkpoint_off_the_canonical_chain_is_rebuilt(
    make_config: ConfigFactory, cast: Cast
) -> None:
    cids, checkpointed = _first_run(make_config, cast)
    config = make_config()
    with sqlite3.connect(_checkpoint(config)) as db:  # the block it names was reorganised away
        db.execute("UPDATE head SET hash = ?", (b"\x13" * 32,))
    with Ledger.open(config) as ledger:
        ledger.catch_up()
        first = ledger._access.first_block
        assert ledger._access.blocks_read == ledger.chain.head()[0] - first + 1
        _same_as_contract(ledger, cids, cast)
    assert checkpointed > 0


def test_unreadable_checkpoint_is_rebuilt_and_replaced(
    make_config: ConfigFactory, cast: Cast
) -> None:
    cids, _ = _first_run(make_config, cast)
    config = make_config()
    path = _checkpoint(config)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"not a database, a torn disk block" * 100)
    with Ledger.open(config) as ledger:
        ledger.catch_up()
        assert ledger._access.blocks_read > 0
        _same_as_contract(ledger, cids, cast)
    with Ledger.open(config) as ledger:  # the fresh checkpoint is valid again
        ledger.catch_up()
        assert ledger._access.blocks_read == 0
