"""The audit index over an embedded chain written by someone else than the gateway: a sync
scans the new blocks for every record's events, and a check repairs a row the chain does not
back (for a record the gateway never held, read by its recordId)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from eth_account import Account

from scanseal.ledger import Ledger, LedgerConfig
from scanseal.service.audit_index import AuditIndex, Filters


def test_new_blocks_of_other_writers_are_indexed_and_rows_checked(tmp_path: Path) -> None:
    owner, uploader, grantee = (Account.create() for _ in range(3))
    ledger = Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=owner)
    index = AuditIndex(tmp_path / "audit.sqlite3")
    try:
        for account in (uploader, grantee):
            ledger.register_identity(owner, account.address, os.urandom(32))
        ledger.authorize_uploader(owner, uploader.address)
        cid = b"\x01\x55\x12\x20" + os.urandom(32)
        ledger.store_record(uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        index.sync(ledger, [])
        stored, more = index.select(Filters(action="stored"), None, 10)
        assert [row.event["actor"] for row in stored] == [uploader.address]
        assert not more
        ledger.grant(uploader, cid, grantee.address)  # nobody tells the index
        index.sync(ledger, [])
        granted, _ = index.select(Filters(identity=grantee.address), None, 10)
        assert [row.event["action"] for row in granted] == ["admin", "granted"]  # its identity
        with sqlite3.connect(tmp_path / "audit.sqlite3") as conn:
            conn.execute("UPDATE events SET subject = ? WHERE action = 'granted'", (owner.address,))
        forged, _ = index.select(Filters(subject=owner.address), None, 10)
        wrong, fresh = index.verify(ledger, forged)
        assert wrong == 1
        again, _ = index.select(Filters(subject=owner.address, action="granted"), None, 10)
        assert again == []
        assert fresh[granted[1].ukey]["subject"] == grantee.address
        admin, _ = index.select(Filters(action="admin"), None, 10)
        assert any(row.event["subject"] == uploader.address for row in admin)
    finally:
        index.close()
        ledger.close()


def test_a_mark_is_written_once_per_sync_and_a_sync_takes_it(tmp_path: Path) -> None:
    """Touching a record already marked since the last sync writes nothing; once a sync has
    read its trail, the next touch marks it again (its later entries are read next time)."""
    owner, uploader, grantee = (Account.create() for _ in range(3))
    ledger = Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=owner)
    index = AuditIndex(tmp_path / "audit.sqlite3")
    try:
        for account in (uploader, grantee):
            ledger.register_identity(owner, account.address, os.urandom(32))
        ledger.authorize_uploader(owner, uploader.address)
        cid = b"\x01\x55\x12\x20" + os.urandom(32)
        ledger.store_record(uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        index.touch(cid)
        written = index._db.total_changes
        index.touch(cid)
        assert index._db.total_changes == written  # marked and not synced: nothing to write
        index.sync(ledger, [])
        with sqlite3.connect(tmp_path / "audit.sqlite3") as conn:
            assert conn.execute("SELECT COUNT(*) FROM dirty").fetchone() == (0,)
        ledger.grant(uploader, cid, grantee.address)
        index.touch(cid)
        with sqlite3.connect(tmp_path / "audit.sqlite3") as conn:
            assert conn.execute("SELECT COUNT(*) FROM dirty").fetchone() == (1,)
        index.sync(ledger, [])
        granted, _ = index.select(Filters(action="granted"), None, 10)
        assert [row.event["subject"] for row in granted] == [grantee.address]
    finally:
        index.close()
        ledger.close()
