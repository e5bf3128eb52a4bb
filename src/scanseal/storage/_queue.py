"""The replication queue: objects held locally that fewer than ``min_replicas`` nodes confirm.

It lives in the local store's index database (``index.sqlite``), so the row that names a new
object is written in the very transaction that indexes and pins the object's blocks: after any
crash either both exist or neither, and an object that was acknowledged is always either
queued or confirmed. Two tables::

    replication        cid, queued_at, attempts, next_at (wall clock, s), last_error
    replication_nodes  cid, node, confirmed (0/1), failures, last_error, failed_at

A row leaves ``replication`` only in the transaction that finds ``min_replicas`` of the
configured nodes confirmed (or when the object is unpinned: nobody keeps it any more). Any
number of processes may share one queue: settling is one write transaction that counts the
confirmations recorded so far, so two replicators at worst push an object twice (harmless:
content-addressed, and an ``add`` of what a node holds returns the same CID).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from scanseal.storage._embedded import EmbeddedStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS replication (
    cid TEXT PRIMARY KEY, queued_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, last_error TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replication_due ON replication (next_at);
CREATE TABLE IF NOT EXISTS replication_nodes (
    cid TEXT NOT NULL, node TEXT NOT NULL, confirmed INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, failed_at REAL,
    PRIMARY KEY (cid, node)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class NodeLag:
    """One node's share of the lag: queued objects it failed to take, and its last error."""

    node: str
    failing_objects: int
    failures: int
    last_error: str


@dataclass(frozen=True, slots=True)
class ReplicationLag:
    """What ``scanseal storage status``, ``/v1/health`` and ``/metrics`` show of the queue."""

    mode: str
    """``sync`` or ``queued`` (a sync store still drains what a queued one left)."""
    queued: int
    """Objects held locally that fewer than ``min_replicas`` nodes confirm yet."""
    oldest_seconds: float | None
    """How long the oldest of them has waited (None: the queue is empty)."""
    nodes: tuple[NodeLag, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Due:
    """A queued object whose next attempt is due, and the nodes that hold it already."""

    cid: str
    attempts: int
    confirmed: frozenset[str]


class ReplicationQueue:
    """The queue's rows in ``local``'s index, for the nodes a store is configured with."""

    def __init__(self, local: EmbeddedStore, nodes: Sequence[str], min_replicas: int) -> None:
        self._local = local
        self._nodes = tuple(nodes)
        self._min = min_replicas
        local.add_schema(SCHEMA)

    def enqueue_in(self, db: sqlite3.Connection, cid: str) -> None:
        """Name ``cid`` in the transaction ``db`` is in (a put's: see EmbeddedStore.put)."""
        now = time.time()
        db.execute(
            "INSERT INTO replication (cid, queued_at, next_at) VALUES (?, ?, ?) "
            "ON CONFLICT (cid) DO UPDATE SET next_at = MIN(next_at, excluded.next_at)",
            (cid, now, now),
        )

    def enqueue(self, cid: str) -> None:
        with self._local.transaction() as db:
            self.enqueue_in(db, cid)

    def forget(self, cid: str) -> None:
        """The object was unpinned: nobody keeps it, nothing is left to replicate."""
        with self._local.transaction() as db:
            db.execute("DELETE FROM replication WHERE cid = ?", (cid,))
            db.execute("DELETE FROM replication_nodes WHERE cid = ?", (cid,))

    def due(self, limit: int, now: float | None = None) -> list[Due]:
        """Up to ``limit`` objects whose next attempt is due, the longest waiting first."""
        now = time.time() if now is None else now
        with self._local.transaction() as db:
            rows = db.execute(
                "SELECT cid, attempts FROM replication WHERE next_at <= ? "
                "ORDER BY next_at, queued_at LIMIT ?",
                (now, limit),
            ).fetchall()
            out = []
            for cid, attempts in rows:
                held = db.execute(
                    "SELECT node FROM replication_nodes WHERE cid = ? AND confirmed = 1", (cid,)
                ).fetchall()
                out.append(Due(str(cid), int(attempts), frozenset(str(n[0]) for n in held)))
        return out

    def release(self, now: float | None = None) -> None:
        """Make every queued object due now (a node came back: nothing should wait for it)."""
        now = time.time() if now is None else now
        with self._local.transaction() as db:
            db.execute("UPDATE replication SET next_at = ? WHERE next_at > ?", (now, now))

    def next_due(self) -> float | None:
        """Wall-clock time of the soonest attempt (None: the queue is empty)."""
        with self._local.transaction() as db:
            row = db.execute("SELECT MIN(next_at) FROM replication").fetchone()
        return None if row[0] is None else float(row[0])

    def settle(
        self, cid: str, confirmed: Sequence[str], failed: Sequence[tuple[str, str]], retry_at: float
    ) -> bool:
        """Record one round's outcome; True when ``cid`` left the queue (``min_replicas`` of the
        configured nodes confirm it). Otherwise its next attempt is at ``retry_at``."""
        with self._local.transaction() as db:
            queued = db.execute("SELECT 1 FROM replication WHERE cid = ?", (cid,)).fetchone()
            if queued is None:  # settled meanwhile (a late probe, another process), or unpinned
                return True
            for node in confirmed:
                db.execute(
                    "INSERT INTO replication_nodes (cid, node, confirmed) VALUES (?, ?, 1) "
                    "ON CONFLICT (cid, node) DO UPDATE SET confirmed = 1",
                    (cid, node),
                )
            for node, error in failed:
                db.execute(
                    "INSERT INTO replication_nodes (cid, node, failures, last_error, failed_at) "
                    "VALUES (?, ?, 1, ?, ?) ON CONFLICT (cid, node) DO UPDATE SET "
                    "failures = failures + 1, last_error = excluded.last_error, "
                    "failed_at = excluded.failed_at",
                    (cid, node, error, time.time()),
                )
            if self._confirmed(db, cid) >= self._min:
                db.execute("DELETE FROM replication WHERE cid = ?", (cid,))
                db.execute("DELETE FROM replication_nodes WHERE cid = ?", (cid,))
                return True
            reason = "; ".join(error for _, error in failed) or "waiting for a node to be retried"
            db.execute(
                "UPDATE replication SET attempts = attempts + 1, next_at = ?, last_error = ? "
                "WHERE cid = ?",
                (retry_at, reason, cid),
            )
            return False

    def _confirmed(self, db: sqlite3.Connection, cid: str) -> int:
        marks = ",".join("?" * len(self._nodes))
        row = db.execute(
            f"SELECT COUNT(*) FROM replication_nodes WHERE cid = ? AND confirmed = 1 "  # noqa: S608
            f"AND node IN ({marks})",
            (cid, *self._nodes),
        ).fetchone()
        return int(row[0])

    def queued(self) -> list[str]:
        """Every queued CID, the longest waiting first."""
        with self._local.transaction() as db:
            rows = db.execute("SELECT cid FROM replication ORDER BY queued_at").fetchall()
        return [str(row[0]) for row in rows]

    def lag(self, mode: str, now: float | None = None) -> ReplicationLag:
        now = time.time() if now is None else now
        with self._local.transaction() as db:
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(queued_at) FROM replication"
            ).fetchone()
            # SQLite takes a bare column (last_error) from the row that gives MAX(failed_at)
            rows = db.execute(
                "SELECT node, COUNT(*), SUM(failures), last_error, MAX(failed_at) "
                "FROM replication_nodes WHERE confirmed = 0 AND failures > 0 "
                "GROUP BY node ORDER BY node"
            ).fetchall()
        waited = None if oldest is None else max(0.0, now - float(oldest))
        nodes = tuple(NodeLag(str(n), int(c), int(f), str(e or "")) for n, c, f, e, _ in rows)
        return ReplicationLag(mode, int(count), waited, nodes)
