"""The gateway's index of the ledger's audit events, so an auditor can ask across records.

The chain (and, batched, the operator's log with its proofs) stays the source of truth; the
index only finds events by who, what, outcome and when without reading every record's trail.
It is a SQLite file beside the gateway's state (``audit.sqlite3``, owner only), and each row
keeps the event's place on the ledger: its key is ``c:BLOCK:LOGINDEX`` for a contract event and
``b:LEAF`` for a batched entry (its index in the operator's log).

How it stays current (:meth:`AuditIndex.sync`, under the ledger lock):

- the first sync rebuilds it: every contract event since the deployment
  (:meth:`~scanseal.ledger.Ledger.audit_events`), the registry's administrative changes, and
  the batched entries of each record the gateway holds;
- each write the gateway makes :meth:`touch`\\ es its record, whose whole trail is read again at
  the next sync (that is how batched entries, which make no block, arrive); a mark is one
  commit, and touching a record already marked since the last sync writes nothing;
- a sync scans the blocks written since the last one for every record's contract events, so
  writes by others (another gateway, an admin's CLI) arrive too.

How its rows are checked (:meth:`verify`): a query re-reads from the ledger the trail of every
record on the page it answers (and the administrative changes when one is on it) and compares
each row with the chain's event; a row that differs, one the chain does not have, and one the
chain has but the index lost are repaired from the chain before the page is selected again.
The trade-off: checking only the records on the page costs one log query per record shown, not
a rebuild per query, and catches any edited, forged or dropped row of those records; a record
whose every row was deleted from the index is not seen until a rebuild (delete the file and
its journals while the gateway is stopped).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from scanseal._sqlite import open_database
from scanseal.errors import InvalidInput
from scanseal.ledger import AuditEntry, Ledger, record_id
from scanseal.storage import CID

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    ukey TEXT PRIMARY KEY,
    rid TEXT NOT NULL,
    blk INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_order ON events (blk, kind, idx, ukey);
CREATE INDEX IF NOT EXISTS events_rid ON events (rid);
CREATE INDEX IF NOT EXISTS events_actor ON events (actor);
CREATE INDEX IF NOT EXISTS events_subject ON events (subject);
CREATE TABLE IF NOT EXISTS records (rid TEXT PRIMARY KEY, cid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dirty (rid TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS scanned (id INTEGER PRIMARY KEY CHECK (id = 0), head INTEGER);
"""
ADMIN: Final = ""
"""The ``rid`` of the registry's administrative changes (they concern no record)."""
_EVIDENCE: Final = ("proof", "evidence")
"""Fields that change as a batch is anchored: served fresh from the ledger, never compared."""


@dataclass(frozen=True)
class Filters:
    """What a query selects; None means any. ``rids``: records by recordId hex; ``scope``:
    a member's visibility (records readable, and itself as actor or subject), None for an
    auditor."""

    rids: tuple[str, ...] | None = None
    identity: str | None = None
    actor: str | None = None
    subject: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: int | None = None
    until: int | None = None
    scope: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Row:
    """One indexed event: its key, its record (recordId hex, or ADMIN), its JSON form."""

    ukey: str
    rid: str
    order: tuple[int, int, int]
    event: dict[str, Any]


def rid_of(cid: str) -> str:
    """A record's recordId, hex, from its manifest CID in any text form."""
    return record_id(CID.parse(cid).to_bytes()).hex()


def key_of(entry: AuditEntry) -> tuple[str, tuple[int, int, int]]:
    """The event's key and place in chain order (see the module's text)."""
    position = entry.position
    if entry.source == "batch":
        leaf = position[2] if position else entry.proof.index if entry.proof else -1
        order = position or (0, 1, leaf)
        return f"b:{leaf}", order
    assert position is not None  # a contract event always has its block and log index
    return f"c:{position[0]}:{position[2]}", position


def _row_of(rid: str, entry: AuditEntry) -> tuple[Any, ...]:
    """The ``events`` row of one ledger event."""
    ukey, order = key_of(entry)
    body = json.dumps(entry.to_dict(), sort_keys=True)
    return (ukey, rid, *order, entry.timestamp, entry.action, entry.outcome, entry.actor,
            entry.subject, body)  # fmt: skip


def _compared(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row as a check compares it: every column, the body without its evidence."""
    body = {k: v for k, v in json.loads(row[-1]).items() if k not in _EVIDENCE}
    return (*row[:-1], body)


class AuditIndex:
    """The SQLite index; every method is safe across request threads."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA)
        self._lock = threading.Lock()
        self._marked: set[str] = set()
        """Records marked dirty on disk (committed) by this process since a sync last took
        their marks: touching one again has nothing to write."""

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def touch(self, cid: bytes) -> None:
        """The gateway wrote an event of record ``cid`` (binary): read its trail again."""
        rid = record_id(cid).hex()
        with self._lock:
            if rid in self._marked:  # its mark is on disk and no sync has taken it yet
                return
            text = str(CID.decode(cid, 0)[0])
            self._db.execute("BEGIN IMMEDIATE")  # one commit (one fsync) for both rows
            try:
                self._db.execute("INSERT OR IGNORE INTO records VALUES (?, ?)", (rid, text))
                self._db.execute("INSERT OR IGNORE INTO dirty VALUES (?)", (rid,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._marked.add(rid)

    def sync(self, ledger: Ledger, held: Iterable[str]) -> None:
        """Bring the index up to the ledger's head (the caller holds the ledger lock); on the
        first sync, ``held`` (manifest CIDs) are the records whose batched entries it reads."""
        head = ledger.chain.head()[0]
        scanned = self._scanned()
        if scanned is None:
            for cid in held:
                self.touch(CID.parse(cid).to_bytes())
            scanned = -1
        if head > scanned:
            events = ledger.audit_events(scanned + 1)
            self._put([(rid.hex(), entry) for rid, entry in events])
            admin = [e for e in ledger.admin_trail() if e.position and e.position[0] > scanned]
            self._put([(ADMIN, entry) for entry in admin])
        with self._lock:
            dirty = [str(row[0]) for row in self._db.execute("SELECT rid FROM dirty")]
        for rid in dirty:
            self._replace(rid, self._fresh(ledger, rid))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM dirty WHERE rid = ?", [(r,) for r in dirty])
                self._db.execute("INSERT OR REPLACE INTO scanned VALUES (0, ?)", (head,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._marked.difference_update(dirty)  # the next touch of these writes again

    def select(self, filters: Filters, after: str | None, limit: int) -> tuple[list[Row], bool]:
        """One page of rows in chain order after cursor ``after``; and whether more follow."""
        where, params = _where(filters)
        if after is not None:
            where.append("(blk, kind, idx, ukey) > (?, ?, ?, ?)")
            params.extend(decode_cursor(after))
        conditions = " WHERE " + " AND ".join(where) if where else ""
        # the conditions are fixed text; every value is a parameter
        sql = f"SELECT ukey, rid, blk, kind, idx, body FROM events{conditions} ORDER BY blk, kind, idx, ukey LIMIT ?"  # noqa: S608, E501
        with self._lock:
            found = self._db.execute(sql, [*params, limit + 1]).fetchall()
        rows = [Row(k, r, (b, kd, i), json.loads(body)) for k, r, b, kd, i, body in found]
        return rows[:limit], len(rows) > limit

    def verify(self, ledger: Ledger, rows: Sequence[Row]) -> tuple[int, dict[str, dict[str, Any]]]:
        """Check the records of ``rows`` against the ledger; repair what differs. Returns how
        many rows were wrong, and the ledger's current form of each event (by key)."""
        wrong, fresh_by_key = 0, {}
        for rid in dict.fromkeys(row.rid for row in rows):
            fresh = self._fresh(ledger, rid)
            expected = {row[0]: _compared(row) for row in (_row_of(rid, e) for e in fresh)}
            with self._lock:
                found = self._db.execute("SELECT * FROM events WHERE rid = ?", (rid,)).fetchall()
            stored = {row[0]: _compared(row) for row in found}
            keys = set(stored) | set(expected)
            differ = [k for k in keys if stored.get(k) != expected.get(k)]
            if differ:
                wrong += len(differ)
                self._replace(rid, fresh)
            fresh_by_key.update({key_of(e)[0]: e.to_dict() for e in fresh})
        return wrong, fresh_by_key

    def record_cid(self, rid: str) -> str | None:
        """The manifest CID of a recordId the gateway has written for, if known."""
        with self._lock:
            row = self._db.execute("SELECT cid FROM records WHERE rid = ?", (rid,)).fetchone()
        return None if row is None else str(row[0])

    def _scanned(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT head FROM scanned WHERE id = 0").fetchone()
        return None if row is None else int(row[0])

    def _fresh(self, ledger: Ledger, rid: str) -> list[AuditEntry]:
        """The ledger's events of ``rid``: the whole trail when its CID is known (batched
        entries included), else its contract events."""
        if rid == ADMIN:
            return ledger.admin_trail()
        cid = self.record_cid(rid)
        if cid is not None:
            return ledger.audit_trail(CID.parse(cid).to_bytes())
        return [entry for _rid, entry in ledger.audit_events(0, bytes.fromhex(rid))]

    def _replace(self, rid: str, entries: Sequence[AuditEntry]) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM events WHERE rid = ?", (rid,))
        self._put([(rid, entry) for entry in entries])

    def _put(self, events: Sequence[tuple[str, AuditEntry]]) -> None:
        rows = [_row_of(rid, entry) for rid, entry in events]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )


def _where(filters: Filters) -> tuple[list[str], list[Any]]:
    """The SQL conditions and their parameters for ``filters``."""
    where: list[str] = []
    params: list[Any] = []
    if filters.rids is not None:
        where.append(f"rid IN ({', '.join('?' * len(filters.rids))})")
        params.extend(filters.rids)
    for column in ("actor", "subject", "action", "outcome"):
        value = getattr(filters, column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if filters.identity is not None:
        where.append("(actor = ? OR subject = ?)")
        params.extend([filters.identity, filters.identity])
    if filters.since is not None:
        where.append("timestamp >= ?")
        params.append(filters.since)
    if filters.until is not None:
        where.append("timestamp <= ?")
        params.append(filters.until)
    if filters.scope is not None:
        me, readable = filters.scope
        where.append(f"(actor = ? OR subject = ? OR rid IN ({', '.join('?' * len(readable))}))")
        params.extend([me, me, *readable])
    return where, params


def encode_cursor(row: Row) -> str:
    """The opaque cursor that continues after ``row``."""
    raw = json.dumps([*row.order, row.ukey], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Inverse of :func:`encode_cursor`; InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        blk, kind, idx, ukey = json.loads(raw)
        if not all(isinstance(v, int) for v in (blk, kind, idx)) or not isinstance(ukey, str):
            raise ValueError(cursor)
    except (ValueError, TypeError):
        raise InvalidInput("cursor is not one this gateway handed out") from None
    return [blk, kind, idx, ukey]
