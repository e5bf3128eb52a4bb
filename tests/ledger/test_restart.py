"""The embedded chain survives a restart: its journal replays to the very same state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from scanseal.errors import IntegrityError, NotFound
from scanseal.ledger import AccessType, Ledger, LedgerConfig, Reason

from .conftest import Cast, populate


def _journal(state_dir: Path) -> Path:
    return state_dir / "journal.jsonl"


def test_records_grants_and_access_events_survive_restart(tmp_path: Path, cast: Cast) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    with Ledger.open(config, deployer=cast.owner) as ledger:
        cid, hashes = populate(ledger, cast)
        ledger.log_access(cast.admin, cid, cast.grantee.address, AccessType.DOWNLOAD)
        ledger.log_access(cast.admin, cid, cast.stranger.address)
        before = ledger.audit_trail(cid)
        address = ledger.address
    with Ledger.open(config) as again:
        assert again.address == address
        assert again.verify_record(cid, *hashes).uploader == cast.uploader.address
        assert again.has_access(cid, cast.grantee.address)
        assert not again.has_access(cid, cast.revoked.address)
        assert again.is_uploader(cast.uploader.address)
        assert again.audit_trail(cid) == before  # same tx hashes, same timestamps
        assert [e.reason for e in again.access_log(cid)] == [Reason.NONE, Reason.NO_GRANT]
        again.store_record(cast.uploader, b"\x01\x55" + bytes(34), *hashes)  # and it goes on
    with Ledger.open(config) as third:
        assert third.get_record(b"\x01\x55" + bytes(34)).image_hash == hashes[0]


def test_torn_last_journal_line_is_dropped(tmp_path: Path, cast: Cast) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    with Ledger.open(config, deployer=cast.owner) as ledger:
        cid, _ = populate(ledger, cast)
    journal = _journal(config.state_dir)
    intact = journal.read_bytes()
    with journal.open("ab") as handle:
        handle.write(b'{"kind":"tx","raw":"02f8')  # the crash hit mid-write
    with Ledger.open(config) as ledger:
        assert ledger.has_access(cid, cast.grantee.address)
    assert journal.read_bytes().startswith(intact)


def test_tampered_journal_is_refused(tmp_path: Path, cast: Cast) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    with Ledger.open(config, deployer=cast.owner) as ledger:
        populate(ledger, cast)
    journal = _journal(config.state_dir)
    lines = journal.read_text().splitlines()
    line = json.loads(lines[-1])
    line["hash"] = "0x" + "00" * 32
    lines[-1] = json.dumps(line)
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match="replay diverged"):
        Ledger.open(config)


def test_open_without_a_contract_and_with_a_wrong_one(tmp_path: Path, cast: Cast) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    with pytest.raises(NotFound, match="no ImageRegistry"):
        Ledger.open(config)
    stranger = Account.create().address
    with pytest.raises(IntegrityError, match="does not hold the ImageRegistry bytecode"):
        Ledger.open(LedgerConfig(state_dir=tmp_path / "chain", contract=stranger))
