"""Which records were granted to whom, in the order the gateway granted them.

A recipient-side agent (``scanseal agent``, docs/DICOM.md) has to learn about new records
without a person telling it the CIDs. The gateway appends one row per (record, recipient) when
an upload names the recipient or an owner's grant is relayed; ``GET /v1/inbox?after=N`` returns
the caller's rows with a sequence number above N. The sequence number is the cursor: a client
that remembers the last one it saw never misses and never re-reads an entry. The inbox only
says where to look; access is still decided by the ledger on each fetch, and the listing leaves
out records the ledger no longer lets the caller read (revoked grants).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scanseal._sqlite import open_database

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    manifest_cid TEXT NOT NULL,
    recipient TEXT NOT NULL,
    UNIQUE (manifest_cid, recipient)
);
CREATE INDEX IF NOT EXISTS inbox_recipient ON inbox (recipient, seq);
"""
PAGE: Final = 200


@dataclass(frozen=True)
class InboxEntry:
    seq: int
    manifest_cid: str


class Inbox:
    """One SQLite file beside the gateway's state; safe across request threads."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, manifest_cid: str, recipients: list[str], *, again: bool = False) -> None:
        """Announce ``manifest_cid`` to each recipient. ``again`` (a relayed grant) moves an
        existing row to a new sequence number, so a grant after a revocation is announced
        anew to a client whose cursor had passed it while it was hidden."""
        verb = "INSERT OR REPLACE" if again else "INSERT OR IGNORE"
        self._insert(verb, [(manifest_cid, r) for r in recipients])

    def add_records(self, records: list[str], recipient: str) -> None:
        """Announce each of ``records`` to ``recipient`` anew (a relayed study grant), in one
        commit: as :meth:`add` with ``again``."""
        self._insert("INSERT OR REPLACE", [(record, recipient) for record in records])

    def announce(self, rows: list[tuple[str, str]]) -> None:
        """Announce each (record, recipient) of ``rows`` unless it already is, in one commit
        (the instances of a study whose grant their uploads deferred)."""
        if rows:
            self._insert("INSERT OR IGNORE", rows)

    def _insert(self, verb: str, rows: list[tuple[str, str]]) -> None:
        """``rows`` (record, recipient) in one commit: one fsync, not one per row (an
        autocommit ``executemany`` commits each row on its own)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    verb + " INTO inbox (manifest_cid, recipient) VALUES (?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def after(self, recipient: str, seq: int, limit: int = PAGE) -> list[InboxEntry]:
        """The recipient's entries with a sequence number above ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, manifest_cid FROM inbox WHERE recipient = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (recipient, seq, limit),
            ).fetchall()
        return [InboxEntry(int(s), str(c)) for s, c in rows]
