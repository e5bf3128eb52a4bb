"""Which record holds which DICOM instance: the SCP's own SQLite index beside the gateway state.

A row is written only after the instance was sealed, stored and registered, so the index never
names a record that does not exist; a re-sent instance points at its newest record.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scanseal._sqlite import open_database

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    manifest_cid TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    received INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_study ON instances (study_uid);
"""


@dataclass(frozen=True)
class Instance:
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    manifest_cid: str
    calling_ae: str


class DicomIndex:
    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def at(cls, state_dir: Path) -> DicomIndex:
        return cls(state_dir / "dicom.sqlite3")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, instance: Instance) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, ?)",
                (
                    instance.sop_instance_uid,
                    instance.study_uid,
                    instance.series_uid,
                    instance.manifest_cid,
                    instance.calling_ae,
                    int(time.time()),
                ),
            )

    def instances(self, study_uid: str | None = None) -> list[Instance]:
        query = "SELECT sop_instance_uid, study_uid, series_uid, manifest_cid, calling_ae "
        query += "FROM instances"
        args: tuple[str, ...] = ()
        if study_uid is not None:
            query += " WHERE study_uid = ?"
            args = (study_uid,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY received, sop_instance_uid", args).fetchall()
        return [Instance(*row) for row in rows]
