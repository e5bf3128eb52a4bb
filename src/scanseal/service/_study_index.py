"""Which registered study records list which instance records, and who reads through them.

A study record (docs/FORMAT.md §7) lists instance records that its registrant owns on this
gateway (``transfer.study_records.register_study`` refuses any other). :class:`StudyIndex`
keeps, beside the gateway's state, one row per registered study (owner, Study Instance UID
digest, time, size) and one per (instance, study) pair, so a fetch of an instance finds the
studies that hold it without reading any manifest. :class:`StudyAccess` answers, under the
gateway's ledger lock, the one question a fetch, an inbox page and an audit read ask: may this
account read this instance, on its own grant or through a study that lists it, and if through
a study, which one (the record ``logAccessVia`` names). Rows are only ever added: a study record
can never change, and whether it opens anything is the ledger's grant table alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from scanseal._sqlite import open_database
from scanseal.ledger import GrantState, Ledger
from scanseal.service._requests import record_bytes
from scanseal.service.state import StoredRecord
from scanseal.transfer.study_manifest import StudyManifest

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    uid_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    instances INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS studies_owner ON studies (owner, uid_sha256);
CREATE TABLE IF NOT EXISTS members (
    instance TEXT NOT NULL,
    study TEXT NOT NULL,
    PRIMARY KEY (instance, study)
);
"""


@dataclass(frozen=True)
class StudyRow:
    """A registered study record as the index holds it."""

    study: str
    owner: str
    uid_sha256: str
    created_at: int
    instances: int


class StudyIndex:
    """One SQLite file beside the gateway's state; safe across request threads."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA, durable=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, study: str, manifest: StudyManifest, owner: str) -> None:
        """Index a study record the ledger holds (a repeated registration changes nothing)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO studies VALUES (?, ?, ?, ?, ?)",
                    (study, owner, manifest.study_uid_sha256.hex(), manifest.created_at,
                     len(manifest.instances)),
                )  # fmt: skip
                self._db.executemany(
                    "INSERT OR IGNORE INTO members VALUES (?, ?)",
                    [(instance, study) for instance in manifest.instances],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def study(self, study: str) -> StudyRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM studies WHERE study = ?", (study,)).fetchone()
        return None if row is None else StudyRow(*row)

    def of_owner(self, owner: str, uid_sha256: str) -> list[StudyRow]:
        """The study records ``owner`` registered for the study with this UID digest, newest
        first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM studies WHERE owner = ? AND uid_sha256 = ? "
                "ORDER BY created_at DESC, study",
                (owner, uid_sha256),
            ).fetchall()
        return [StudyRow(*row) for row in rows]

    def members(self, study: str) -> list[str]:
        """The instance records ``study`` lists (none when it is not a study record here)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT instance FROM members WHERE study = ? ORDER BY instance", (study,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def holding(self, instance: str, owner: str) -> list[str]:
        """The study records of ``owner`` that list ``instance``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.study FROM members m JOIN studies s ON s.study = m.study "
                "WHERE m.instance = ? AND s.owner = ? ORDER BY s.created_at, s.study",
                (instance, owner),
            ).fetchall()
        return [str(row[0]) for row in rows]


class StudyAccess:
    """Reads of instance records through the studies that list them (ledger lock held)."""

    def __init__(
        self, path: Path, ledger: Ledger, held: Callable[[str], StoredRecord | None]
    ) -> None:
        self.index = StudyIndex(path)
        self._ledger = ledger
        self._held = held

    def close(self) -> None:
        self.index.close()

    def via(self, instance: str, owner: str, account: str) -> bytes | None:
        """The study record (binary CID) a read of ``instance`` by ``account`` is decided
        through: None when ``account`` may read it on its own or no study of the instance's
        ``owner`` lists it; else the first such study granted to ``account``, else the first
        whose grant was revoked (so the denial says ``revoked``), else None."""
        studies = self.index.holding(instance, owner)  # none: nothing to ask the ledger
        if not studies or self._ledger.has_access(record_bytes(instance), account):
            return None
        revoked = None
        for study in studies:
            binary = record_bytes(study)
            if self._ledger.has_access(binary, account):
                return binary
            if revoked is None and self._ledger.grant_state(binary, account) == GrantState.REVOKED:
                revoked = binary
        return revoked

    def may_audit(self, study: str, account: str) -> bool:
        """Whether ``account`` may read the trail of the study record ``study``: its
        registrant, or an account the ledger lets read the study record."""
        row = self.index.study(study)
        return row is not None and (
            row.owner == account or self._ledger.has_access(record_bytes(study), account)
        )

    def trail(self, study: str) -> list[dict[str, Any]]:
        """What happened to a study: the study record's own events and those of every
        instance it lists, each naming its ``record``, in chain order."""
        records = [study, *self.index.members(study)]
        events = [
            (entry.position or (0, 0, 0), order, {"record": record, **entry.to_dict()})
            for order, record in enumerate(records)
            for entry in self._ledger.audit_trail(record_bytes(record))
        ]
        events.sort(key=lambda item: (item[0], item[1]))
        return [event for _position, _order, event in events]

    def readable(self, instance: str, account: str) -> bool:
        """Whether ``account`` may read ``instance`` now, on its own grant or a study's."""
        if self._ledger.has_access(record_bytes(instance), account):
            return True
        stored = self._held(instance)
        if stored is None:
            return False
        studies = self.index.holding(instance, stored.owner)
        return any(self._ledger.has_access(record_bytes(s), account) for s in studies)
