"""The gateway's own state in SQLite: used nonces, the records it holds, and their grants.

An upload is written ahead: a ``pending_uploads`` row is committed before the record goes to
the ledger, and turned into a ``records`` row (one transaction) once the ledger holds it. A
crash in between leaves the pending row, which the gateway reconciles with the ledger when it
starts again (docs/PROTOCOL.md, "Crashes").

Nonces are single-use for good: a nonce is inserted (primary key) and committed with
``synchronous=FULL`` before the request it belongs to is served, and the row outlives a restart,
so replaying a captured request fails even after the gateway was stopped, killed or lost power.
Rows are pruned only once their request has expired, when the validity window alone already
refuses them.

Committing is a group commit: requests that arrive while one commit is being made durable wait
for the next, and that one inserts all of their nonces in a single transaction, so several
requests share one fsync instead of queueing behind one fsync each. The database stays the only
judge of a replay — each insert still meets the primary key — and no caller learns that its
nonce is fresh before the transaction holding it has been committed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from scanseal._sqlite import open_database
from scanseal.errors import StorageUnavailable

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce BLOB PRIMARY KEY,
    requester TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS records (
    manifest_cid TEXT PRIMARY KEY,
    envelope_cid TEXT NOT NULL,
    owner TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_uploads (
    manifest_cid TEXT PRIMARY KEY,
    envelope_cid TEXT NOT NULL,
    owner TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS awaiting_study (
    manifest_cid TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS grants (
    manifest_cid TEXT NOT NULL,
    grantee TEXT NOT NULL,
    grant_cid TEXT NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (manifest_cid, grantee)
);
"""
_PRUNE_EVERY: Final = 1000
_RECORDS_KEPT: Final = 65_536
"""Stored-record rows kept in memory (a few hundred bytes each)."""


@dataclass(eq=False)
class _Group:
    """Nonces waiting for one commit, and its outcome: which were fresh, or why it failed."""

    rows: list[tuple[bytes, str, int]] = field(default_factory=list)
    fresh: list[bool] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


class _NonceLog:
    """Used nonces on their own connection, committed in groups (leader/follower).

    The first waiter finding no commit in progress becomes the leader: it takes every queued
    nonce, inserts them in one transaction and commits (one fsync) without holding the lock,
    while new arrivals queue for the next group. Everyone in the group wakes when it is done.
    """

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA, durable=True)  # a used nonce survives a crash
        self._cond = threading.Condition()
        self._queued = _Group()
        self._committing = False
        self._inserts = 0
        self.commits = 0

    def close(self) -> None:
        with self._cond:
            while self._committing:
                self._cond.wait()
            self._db.close()

    def use(self, nonce: bytes, requester: str, expires_at: int) -> bool:
        """True once ``nonce`` is durably recorded as used; False if it was used before."""
        with self._cond:
            group = self._queued
            slot = len(group.rows)
            group.rows.append((nonce, requester, expires_at))
            while not group.done:
                if self._committing:
                    self._cond.wait()
                    continue
                self._committing = True
                self._queued = _Group()
                self._cond.release()
                try:
                    self._commit(group)
                finally:
                    self._cond.acquire()
                    self._committing = False
                    group.done = True
                    self._cond.notify_all()
            if group.error is not None or slot >= len(group.fresh):
                problem = group.error or "the commit was interrupted"
                raise StorageUnavailable(f"cannot record the request nonce: {problem}")
            return group.fresh[slot]

    def _commit(self, group: _Group) -> None:
        try:
            fresh = []
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in group.rows:
                    fresh.append(self._insert(row))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except Exception as error:  # nobody in a failed group is served
            group.error = error
            return
        group.fresh = fresh
        self.commits += 1
        self._inserts += sum(fresh)
        if self._inserts >= _PRUNE_EVERY:
            self._inserts = 0
            self._db.execute("DELETE FROM nonces WHERE expires_at < ?", (int(time.time()),))

    def _insert(self, row: tuple[bytes, str, int]) -> bool:
        try:
            self._db.execute(
                "INSERT INTO nonces (nonce, requester, expires_at) VALUES (?, ?, ?)", row
            )
        except sqlite3.IntegrityError:
            return False
        return True


@dataclass(frozen=True)
class StoredRecord:
    manifest_cid: str
    envelope_cid: str
    owner: str


class GatewayState:
    """One SQLite file (WAL, synchronous=FULL but for :meth:`add_record`); safe across
    request threads.

    Nonces have their own connection, so looking up a record never waits behind a nonce commit.
    """

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA, durable=True)
        self._lock = threading.Lock()
        self._nonces = _NonceLog(path)
        # rows are never changed or deleted: the most recently read ones are kept
        self._records: OrderedDict[str, StoredRecord] = OrderedDict()

    def close(self) -> None:
        self._nonces.close()
        with self._lock:
            self._db.close()

    # --- nonces

    def use_nonce(self, nonce: bytes, requester: str, expires_at: int) -> bool:
        """Mark ``nonce`` used, durably, before returning True; False if it was used before (a
        replay). StorageUnavailable when the commit fails: then the request must not be served.
        """
        return self._nonces.use(nonce, requester, expires_at)

    @property
    def nonce_commits(self) -> int:
        """Commits (fsyncs) made for nonces so far: fewer than nonces when groups formed."""
        return self._nonces.commits

    # --- records and grants

    def add_record(self, record: StoredRecord) -> None:
        """Hold ``record`` (and end its pending upload, if any) in one transaction.

        Committed without an fsync of its own (``synchronous=NORMAL`` for this one commit; the
        WAL is appended in order, so the next FULL commit — the next nonce or pending row —
        makes it durable too). A crash of the process cannot lose it; a power cut may, and
        then the pending row it would have ended (committed with an fsync before the ledger
        heard of the record) is still there, so the start-up reconciliation holds the record
        again, as after a crash between the ledger write and this commit."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?)",
                        (record.manifest_cid, record.envelope_cid, record.owner, int(time.time())),
                    )
                    self._db.execute(
                        "DELETE FROM pending_uploads WHERE manifest_cid = ?",
                        (record.manifest_cid,),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def begin_upload(self, record: StoredRecord, *, awaiting: bool = False) -> None:
        """Note, durably, that ``record`` is about to be registered on the ledger; with
        ``awaiting``, in the same commit, that its recipients' grant waits for its study
        (:meth:`awaiting_study`)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO pending_uploads VALUES (?, ?, ?, ?)",
                    (record.manifest_cid, record.envelope_cid, record.owner, int(time.time())),
                )
                if awaiting:
                    self._db.execute(
                        "INSERT OR IGNORE INTO awaiting_study VALUES (?)", (record.manifest_cid,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def awaiting_study(self, records: list[str] | None = None) -> set[str]:
        """Those of ``records`` (None: every record) uploaded with their recipients' grant
        deferred to a study record that has not granted them yet: registered and held, but
        announced to nobody and readable by no recipient until their study's registration
        grants them."""
        with self._lock:
            if records is None:
                rows = self._db.execute("SELECT manifest_cid FROM awaiting_study").fetchall()
            else:
                query = "SELECT manifest_cid FROM awaiting_study WHERE manifest_cid = ?"
                rows = [row for r in records for row in self._db.execute(query, (r,))]
        return {str(row[0]) for row in rows}

    def end_awaiting(self, records: list[str]) -> None:
        """``records`` no longer wait for their study (it granted and announced them)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "DELETE FROM awaiting_study WHERE manifest_cid = ?", [(r,) for r in records]
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending_uploads(self) -> list[StoredRecord]:
        """Uploads begun but not finished (a crash came between), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT manifest_cid, envelope_cid, owner FROM pending_uploads ORDER BY created"
            ).fetchall()
        return [StoredRecord(*row) for row in rows]

    def record(self, manifest_cid: str) -> StoredRecord | None:
        with self._lock:
            known = self._records.get(manifest_cid)
            if known is not None:
                self._records.move_to_end(manifest_cid)
                return known
            row = self._db.execute(
                "SELECT manifest_cid, envelope_cid, owner FROM records WHERE manifest_cid = ?",
                (manifest_cid,),
            ).fetchone()
            if row is None:
                return None
            known = self._records[manifest_cid] = StoredRecord(*row)
            if len(self._records) > _RECORDS_KEPT:
                self._records.popitem(last=False)
            return known

    def held(self) -> list[str]:
        """The manifest CIDs of every record this gateway holds (what its audit index
        rebuilds from)."""
        with self._lock:
            rows = self._db.execute("SELECT manifest_cid FROM records").fetchall()
        return [str(row[0]) for row in rows]

    def set_grant(self, manifest_cid: str, grantee: str, grant_cid: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO grants VALUES (?, ?, ?, 1)",
                (manifest_cid, grantee, grant_cid),
            )

    def set_grants(self, rows: list[tuple[str, str, str]]) -> None:
        """:meth:`set_grant` for each (record, grantee, grant object) in one commit (a
        study's grant holds one per instance)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO grants VALUES (?, ?, ?, 1)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def end_grant(self, manifest_cid: str, grantee: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE grants SET active = 0 WHERE manifest_cid = ? AND grantee = ?",
                (manifest_cid, grantee),
            )

    def grant_cid(self, manifest_cid: str, grantee: str) -> str | None:
        """The active grant object for ``grantee``, if the owner published one."""
        with self._lock:
            row = self._db.execute(
                "SELECT grant_cid FROM grants WHERE manifest_cid = ? AND grantee = ? AND active",
                (manifest_cid, grantee),
            ).fetchone()
        return None if row is None else str(row[0])
