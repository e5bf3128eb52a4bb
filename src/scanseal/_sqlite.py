"""The one way ScanSeal opens its small SQLite state files (block index, nonces, DICOM index)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(
    path: Path, schema: str, *, timeout: float = 5.0, durable: bool = False
) -> sqlite3.Connection:
    """Autocommit connection in WAL mode with ``schema`` applied, shareable across threads.

    The parent directory is created (owner only) if missing. Callers serialize access with
    their own lock. ``durable`` sets ``synchronous=FULL`` for
    state that must survive a power cut (used nonces).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    if durable:
        db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db
