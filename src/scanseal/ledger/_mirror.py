"""The contract's access table, mirrored in memory from its events, with a checkpoint on disk.

``hasAccess(recordId, account)`` is true when ``account`` is not zero and is either the record's
controller or holds an active grant. Exactly four events change that answer — ``ImageStored``
(the uploader is the first controller), ``ControllerChanged`` (a hand-over, possibly to nobody),
``AccessGranted`` and ``AccessRevoked`` (set the grant state) — so replaying them in chain order
gives the same table the contract holds. Before every answer the mirror
compares the chain head with the block it last read and, when the head moved, reads the new
blocks' events first. An answer therefore reflects the chain as of that head check, as an
``eth_call`` at ``latest`` would, but costs a head check and a dict lookup instead of an EVM
run: on the embedded chain a ``hasAccess`` call takes milliseconds, the head check microseconds.
The transactions this process sends need not be read back at all: their receipts hold their
logs, and when such a block directly follows the mirrored head and holds that one transaction,
the mirror applies the receipt's logs and moves its head there (``apply_receipt``), so the next
head check finds nothing new. ``identityOf`` is answered the same way: the
``IdentityRegistered`` event carries the new card hash, and only an account no event has
named yet costs one ``eth_call``.

A revocation by anyone, through this process or by a direct transaction on the node, is seen at
the first decision after the block that holds it. A head whose ancestry changed (a reorg on a
chain without finality) throws the table away and rebuilds it from the block that deployed the
contract (saved beside its address when this installation deployed it; block 0 otherwise).

The table and the head it reflects are checkpointed in a SQLite file (one transaction, so a
crash leaves the previous checkpoint or the new one, never a mix). Opening loads the checkpoint
and reads only the blocks after its head, provided that head's hash is still the canonical
block at its height; otherwise (a reorg, another chain behind the same URL, an unreadable file)
the table is rebuilt from the first block. A checkpoint is only a cache of the chain: losing
one costs a rebuild, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from scanseal._address import checksum
from scanseal._sqlite import open_database
from scanseal.errors import ScanSealError
from scanseal.ledger import _abi
from scanseal.ledger._chain import Chain
from scanseal.ledger.models import GrantState

_ZERO: Final = "0x" + "00" * 20
_EVENTS: Final = ("ImageStored", "ControllerChanged", "AccessGranted", "AccessRevoked")
_IDENTITY_EVENT: Final = "IdentityRegistered"
"""The one event that changes ``identityOf``: it carries the account's new card hash."""
_MIRRORED: Final = frozenset((*_EVENTS, _IDENTITY_EVENT))
_SPAN: Final = 10_000
"""Blocks per eth_getLogs query: public nodes cap the range a single query may cover."""
_SAVE_SECONDS: Final = 2.0
"""Most often a moving head is checkpointed (closing and catching up always save)."""
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    contract TEXT NOT NULL,
    first_block INTEGER NOT NULL,
    number INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS controllers (rid BLOB PRIMARY KEY, account TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
    rid BLOB NOT NULL,
    account TEXT NOT NULL,
    state INTEGER NOT NULL,
    PRIMARY KEY (rid, account)
);
"""


@dataclass(frozen=True)
class Head:
    """A block the mirror has read up to: its number and hash."""

    number: int
    hash: bytes


class AccessMirror:
    """hasAccess and grantOf answered from memory, in step with the chain.

    ``catch_up`` (called once at start, off the request path) loads the checkpoint and reads
    the blocks after it; until a first catch-up is done ``ready`` is unset, and a decision made
    before then does the catch-up itself.
    """

    def __init__(
        self, chain: Chain, contract: str, first_block: int = 0, checkpoint: Path | None = None
    ) -> None:
        self._chain = chain
        self._contract = contract
        self.first_block = first_block
        self._topics = ["0x" + _abi.event_topic(name).hex() for name in sorted(_MIRRORED)]
        self._lock = threading.Lock()
        self._head: Head | None = None
        self._controllers: dict[bytes, str] = {}
        """Each on-chain record's controller (the zero address when handed to nobody)."""
        self._grants: dict[tuple[bytes, str], int] = {}
        self._identities: dict[str, bytes | None] = {}
        """``identityOf`` as the newest IdentityRegistered of the account set it, or as read
        once from the contract (memory only: the checkpoint does not hold them, a restart
        reads each account again once, or learns it from the events it reads)."""
        self._checkpoint = _Checkpoint(checkpoint, contract, first_block) if checkpoint else None
        self._loaded = False
        self._saved_at = 0.0
        self._changed_controllers: set[bytes] = set()
        self._changed_grants: set[tuple[bytes, str]] = set()
        self._rewrite = True
        self.ready = threading.Event()
        self.blocks_read = 0
        """Blocks whose events were read from the chain (the cost a checkpoint saves)."""

    def has_access(self, rid: bytes, account: str) -> bool:
        """The contract's ``hasAccess(rid, account)`` at the current head."""
        account = checksum(account)
        with self._lock:
            self._sync()
            if account == _ZERO:
                return False
            if self._controllers.get(rid) == account:
                return True
            return self._grants.get((rid, account), GrantState.NEVER) == GrantState.ACTIVE

    def grant_of(self, rid: bytes, account: str) -> GrantState:
        """The contract's ``grantOf``."""
        account = checksum(account)
        with self._lock:
            self._sync()
            return GrantState(self._grants.get((rid, account), GrantState.NEVER))

    def identity_of(self, account: str, read: Callable[[str], bytes | None]) -> bytes | None:
        """The contract's ``identityOf(account)`` at the current head: from memory once known,
        ``read`` (an ``eth_call``) otherwise. Each ``IdentityRegistered`` event the mirror
        applies (read in the new blocks, or in the receipt of a transaction sent here) sets
        the account's answer to the card hash it carries, and a rebuild forgets them all, so
        a changed identity is never answered from before the change once its block is read;
        as with ``has_access``, a registration in a block after the head check is seen at
        the next check."""
        try:
            account = checksum(account)
        except ValueError:  # not an address: the contract call says how it is refused
            return read(account)
        with self._lock:
            self._sync()
            if account not in self._identities:
                self._identities[account] = read(account)
            return self._identities[account]

    def apply_receipt(self, receipt: dict[str, Any]) -> None:
        """Take a mined transaction's logs from its receipt, without reading its block back.

        Only when the receipt's block directly follows the head the table reflects and holds
        that transaction alone (so these are all of the block's logs): the head then moves to
        that block, as a head check and an ``eth_getLogs`` of it would have moved it, for one
        block lookup. Anything else (a block of several transactions, a head that is behind or
        ahead, a lookup that fails) changes nothing: the next decision reads the new blocks
        as always. On the embedded chain, per upload of ``bench/upload_profile.py`` (one
        transaction each), ``AccessMirror._sync`` went from 3.5-4.6 ms of CPU to 0.3 ms, for
        0.15 ms of block lookups here."""
        with self._lock:
            known = self._head
            try:
                number = int(receipt["blockNumber"])
                if known is None or number != known.number + 1:
                    return
                block_hash = bytes(receipt["blockHash"])
                if self._chain.block_outline(block_hash) != (number, known.hash, 1):
                    return
                logs = [
                    log for log in receipt["logs"] if checksum(log["address"]) == self._contract
                ]
                logs.sort(key=lambda item: int(item["logIndex"]))
            except (ScanSealError, KeyError, TypeError, ValueError):
                return  # a node's answer unfit for it: the next decision reads the block's logs
            for log in logs:
                self._apply(log)
            self._advance(Head(number, block_hash))

    def on_chain(self, rid: bytes) -> bool:
        """Whether record ``rid`` was stored on chain (an ``ImageStored`` event)."""
        return bool(self.stored_among([rid]))

    def stored_among(self, rids: Iterable[bytes]) -> list[bytes]:
        """Those of ``rids`` stored on chain, after one head check for all of them."""
        with self._lock:
            self._sync()
            return [rid for rid in rids if rid in self._controllers]

    def head_number(self, *, check: bool = True) -> int:
        """The block the table reflects: after a head check, or (``check`` False, right after a
        decision made one) as last read. A batched entry written now follows that block."""
        with self._lock:
            if check or self._head is None:
                self._sync()
            assert self._head is not None
            return self._head.number

    def catch_up(self) -> None:
        """Load the checkpoint, read the blocks since, save the new checkpoint; then ready."""
        with self._lock:
            self._sync()
            self._save()

    def close(self) -> None:
        """Save what was read and close the checkpoint file."""
        with self._lock:
            if self._checkpoint is not None:
                self._save()
                self._checkpoint.close()
                self._checkpoint = None

    def _sync(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._load()
        number, block_hash = self._chain.head()
        known = self._head
        if known is not None and known.number == number and known.hash == block_hash:
            self.ready.set()
            return
        if known is not None and (
            number < known.number or self._chain.block_hash(known.number) != known.hash
        ):
            known = None  # the chain we read is no longer canonical: start again
        if known is None:
            self._controllers.clear()
            self._grants.clear()
            self._identities.clear()
            self._rewrite = True
        start = self.first_block if known is None else known.number + 1
        for low in range(start, number + 1, _SPAN):
            high = min(low + _SPAN - 1, number)
            logs = self._chain.logs(self._contract, [self._topics], low, high)
            self.blocks_read += high - low + 1
            for log in sorted(logs, key=lambda item: (item["blockNumber"], item["logIndex"])):
                self._apply(log)
        self._advance(Head(number, block_hash))
        self.ready.set()

    def _advance(self, head: Head) -> None:
        """The table now reflects ``head``; checkpoint it if the last save is old enough."""
        self._head = head
        if time.monotonic() - self._saved_at >= _SAVE_SECONDS:
            self._save()

    def _load(self) -> None:
        """Take the checkpoint's table if its head is still a canonical block."""
        if self._checkpoint is None:
            return
        saved = self._checkpoint.load()
        if saved is None:
            return
        head, controllers, grants = saved
        if self._chain.block_hash(head.number) != head.hash:
            return  # reorganised, or another chain: rebuilt from the first block
        self._head, self._controllers, self._grants = head, controllers, grants
        self._rewrite = False

    def _save(self) -> None:
        self._saved_at = time.monotonic()
        if self._checkpoint is None or self._head is None:
            return
        if self._rewrite:
            self._changed_controllers = set(self._controllers)
            self._changed_grants = set(self._grants)
        controllers = [(rid, self._controllers[rid]) for rid in self._changed_controllers]
        grants = [(key[0], key[1], self._grants[key]) for key in self._changed_grants]
        if not self._checkpoint.save(self._head, controllers, grants, rewrite=self._rewrite):
            self._checkpoint = None  # unwritable: the mirror goes on without one
            return
        self._rewrite = False
        self._changed_controllers.clear()
        self._changed_grants.clear()

    def _apply(self, log: dict[str, Any]) -> None:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is None:
            return
        name, fields = decoded
        if name not in _MIRRORED:  # a receipt holds every event of its transaction
            return
        if name == _IDENTITY_EVENT:
            card = bytes(fields["cardHash"])
            self._identities[checksum(str(fields["account"]))] = card if any(card) else None
            return
        rid = bytes(fields["recordId"])
        if name in ("ImageStored", "ControllerChanged"):
            holder = fields["uploader"] if name == "ImageStored" else fields["controller"]
            self._controllers[rid] = checksum(str(holder))
            self._changed_controllers.add(rid)
            return
        key = (rid, str(fields["grantee"]))
        self._grants[key] = GrantState.ACTIVE if name == "AccessGranted" else GrantState.REVOKED
        self._changed_grants.add(key)


class _Checkpoint:
    """The mirror's table and head in one SQLite file, written in one transaction each time.

    The mirror hands over only the rows that changed since its last save, or all of them after
    a rebuild. Every failure to read or write is absorbed: the caller falls back to the chain.
    """

    def __init__(self, path: Path, contract: str, first_block: int) -> None:
        self._path = path
        self._contract = contract
        self._first_block = first_block
        self._db: sqlite3.Connection | None = None

    def load(self) -> tuple[Head, dict[bytes, str], dict[tuple[bytes, str], int]] | None:
        try:
            db = self._open()
            row = db.execute("SELECT contract, first_block, number, hash FROM head").fetchone()
            if row is None or (row[0], row[1]) != (self._contract, self._first_block):
                return None
            controllers = {bytes(r): str(a) for r, a in db.execute("SELECT * FROM controllers")}
            grants = {(bytes(r), str(a)): int(s) for r, a, s in db.execute("SELECT * FROM grants")}
        except (sqlite3.Error, OSError, ScanSealError):  # a cache: unusable means rebuild
            self._discard()
            return None
        return Head(int(row[2]), bytes(row[3])), controllers, grants

    def save(
        self,
        head: Head,
        controllers: list[tuple[bytes, str]],
        grants: list[tuple[bytes, str, int]],
        *,
        rewrite: bool,
    ) -> bool:
        """Write ``head`` and the rows changed since the last save (all rows on a ``rewrite``)
        in one transaction; False if the file is unusable."""
        try:
            db = self._open()
            db.execute("BEGIN IMMEDIATE")
            try:
                if rewrite:
                    db.execute("DELETE FROM controllers")
                    db.execute("DELETE FROM grants")
                db.executemany("INSERT OR REPLACE INTO controllers VALUES (?, ?)", controllers)
                db.executemany("INSERT OR REPLACE INTO grants VALUES (?, ?, ?)", grants)
                db.execute(
                    "INSERT OR REPLACE INTO head VALUES (0, ?, ?, ?, ?)",
                    (self._contract, self._first_block, head.number, head.hash),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError, ScanSealError):  # a cache: unusable means rebuild
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = open_database(self._path, _SCHEMA)
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: consistent after a crash
        return self._db

    def _discard(self) -> None:
        """Remove an unreadable checkpoint so the next save starts a fresh one."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(str(self._path) + suffix).unlink()
