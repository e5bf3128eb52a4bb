"""The gateway's own state in SQLite: used nonces, the records it holds, and their grants.

Nonces are single-use for good: a nonce is inserted (primary key) before the request it belongs
to is served, and the row outlives a restart, so replaying a captured request fails even after
the gateway was stopped and started again. Rows are pruned only once their request has expired,
when the validity window alone already refuses them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scanseal._sqlite import open_database

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
CREATE TABLE IF NOT EXISTS grants (
    manifest_cid TEXT NOT NULL,
    grantee TEXT NOT NULL,
    grant_cid TEXT NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (manifest_cid, grantee)
);
"""
_PRUNE_EVERY: Final = 1000


@dataclass(frozen=True)
class StoredRecord:
    manifest_cid: str
    envelope_cid: str
    owner: str


class GatewayState:
    """One SQLite file (WAL, synchronous=FULL) behind a lock; safe across request threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = open_database(path, _SCHEMA, durable=True)  # a used nonce survives a crash
        self._lock = threading.Lock()
        self._inserts = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- nonces

    def use_nonce(self, nonce: bytes, requester: str, expires_at: int) -> bool:
        """Mark ``nonce`` used; False if it was used before (a replay)."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO nonces (nonce, requester, expires_at) VALUES (?, ?, ?)",
                    (nonce, requester, expires_at),
                )
            except sqlite3.IntegrityError:
                return False
            self._inserts += 1
            if self._inserts % _PRUNE_EVERY == 0:
                self._db.execute("DELETE FROM nonces WHERE expires_at < ?", (int(time.time()),))
            return True

    # --- records and grants

    def add_record(self, record: StoredRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?)",
                (record.manifest_cid, record.envelope_cid, record.owner, int(time.time())),
            )

    def record(self, manifest_cid: str) -> StoredRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT manifest_cid, envelope_cid, owner FROM records WHERE manifest_cid = ?",
                (manifest_cid,),
            ).fetchone()
        return None if row is None else StoredRecord(*row)

    def set_grant(self, manifest_cid: str, grantee: str, grant_cid: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO grants VALUES (?, ?, ?, 1)",
                (manifest_cid, grantee, grant_cid),
            )

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
