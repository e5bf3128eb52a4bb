"""The embedded chain's blocks, receipts and state live in a scratch SQLite file, not in memory.

The file is private to the process (unlinked once open, rebuilt from the journal on every
open); a fault of it (here a real SQLITE_FULL, the database capped at its current size) is
LedgerUnavailable, the transaction leaves the journal again, and the chain refuses further
work until it is opened again from the journal.
"""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import pytest

from scanseal.errors import LedgerUnavailable, NotFound
from scanseal.ledger import Ledger, LedgerConfig

from .conftest import Cast, new_cid, populate

HASHES = (bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32)


def _scratch_rows(ledger: Ledger) -> int:
    scratch = ledger.chain._db.scratch  # type: ignore[attr-defined]
    return int(scratch._db.execute("SELECT COUNT(*) FROM kv").fetchone()[0])


def _open_scratch_files(state_dir: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if target.startswith(str(state_dir)) and ".chain-" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_the_chain_database_is_a_private_scratch_file(tmp_path: Path, cast: Cast) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    with Ledger.open(config, deployer=cast.owner) as ledger:
        before = _scratch_rows(ledger)
        cid, _hashes = populate(ledger, cast)
        assert _scratch_rows(ledger) > before  # the blocks went to the file
        (held,) = _open_scratch_files(config.state_dir)
        assert held.endswith("(deleted)")  # unlinked: nobody else sees it
        assert not any(p.name.startswith(".chain-") for p in config.state_dir.iterdir())
    assert _open_scratch_files(config.state_dir) == []  # closed with the chain
    with Ledger.open(config, operator=cast.admin) as again:  # rebuilt from the journal
        assert again.has_access(cid, cast.grantee.address)


def test_a_failed_scratch_file_refuses_and_the_journal_keeps_nothing(
    tmp_path: Path, cast: Cast
) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    journal = config.state_dir / "journal.jsonl"
    with Ledger.open(config, deployer=cast.owner) as ledger:
        populate(ledger, cast)
        kept = journal.read_bytes()
        scratch = ledger.chain._db.scratch  # type: ignore[attr-defined]
        pages = scratch._db.execute("PRAGMA page_count").fetchone()[0]
        scratch._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        stored, failed = [], None
        for _ in range(200):  # the first write that needs a new page fails
            cid = new_cid()
            try:
                ledger.store_record(cast.uploader, cid, *HASHES)
            except LedgerUnavailable as error:
                failed, failure = cid, str(error)
                break
            stored.append(cid)
        assert failed is not None
        assert "working database failed" in failure
        with pytest.raises(LedgerUnavailable, match="restart the gateway"):
            ledger.store_record(cast.uploader, new_cid(), *HASHES)
    lines = journal.read_bytes().splitlines()
    assert len(lines) == len(kept.splitlines()) + len(stored)  # the failed one was cut
    with Ledger.open(config, operator=cast.admin) as again:  # the journal replays cleanly
        assert all(again.get_record(cid).image_hash == HASHES[0] for cid in stored)
        with pytest.raises(NotFound):
            again.get_record(failed)


class _Marker:
    """Something a caller holds while it reads the chain (a fetch holds its bundle)."""


def test_a_reverted_call_keeps_nothing_of_its_caller_alive(tmp_path: Path, cast: Cast) -> None:
    config = LedgerConfig(state_dir=tmp_path / "chain")
    with Ledger.open(config, deployer=cast.owner) as ledger:
        populate(ledger, cast)

        def caller() -> weakref.ref[_Marker]:
            held = _Marker()
            with pytest.raises(NotFound):
                ledger.get_record(new_cid())  # the contract reverts
            return weakref.ref(held)

        gc.collect()
        gc.disable()
        try:
            gone = caller()
            assert gone() is None  # freed on return, not left for the collector
        finally:
            gc.enable()
