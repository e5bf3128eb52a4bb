"""The one way ScanSeal opens its small SQLite state files (block index, nonces, DICOM index).

A state file that is corrupted, on a full disk or on a read-only file system is a fault of the
installation, not a bug: :func:`open_database` turns it into one ScanSealError naming the file
(see :func:`database_error`). Errors met later keep their sqlite3 type, so callers' rollbacks
still run, but remember their file (``database_error`` finds it), so the CLI's last-resort
handler can still name it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from scanseal._disk import disk_error
from scanseal.errors import InvalidInput, ScanSealError, StorageUnavailable

_DATABASE = "scanseal_database"
_CORRUPT = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_NO_ROOM = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
_NOT_WRITABLE = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM})


class _Connection(sqlite3.Connection):
    """A connection whose errors carry the path of its database file."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as error:
            setattr(error, _DATABASE, self.path)
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as error:
            setattr(error, _DATABASE, self.path)
            raise

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.Error as error:
            setattr(error, _DATABASE, self.path)
            raise


def database_error(error: sqlite3.Error, path: Path | None = None) -> ScanSealError | None:
    """The ScanSealError for a fault of the database file itself, or None for anything else.

    Corrupted (not a database, malformed image), full disk or I/O error: StorageUnavailable
    (exit 5, HTTP 503). Read-only or not openable: InvalidInput (exit 2). Constraint
    violations, busy databases and misuse are not faults of the file and stay as they are.
    """
    where = path if path is not None else getattr(error, _DATABASE, None)
    name = f"{where}" if where is not None else "a ScanSeal database"
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _CORRUPT:
        return StorageUnavailable(
            f"{name}: corrupted ({error}): move it aside or restore it from a backup"
        )
    if primary in _NO_ROOM:
        return StorageUnavailable(f"{name}: {error}")
    if primary in _NOT_WRITABLE:
        return InvalidInput(f"{name}: cannot be opened for writing ({error})")
    return None


def open_database(
    path: Path, schema: str, *, timeout: float = 5.0, durable: bool = False
) -> sqlite3.Connection:
    """Autocommit connection in WAL mode with ``schema`` applied, shareable across threads.

    The parent directory is created (owner only) if missing, and the file is owner-only (0600;
    SQLite gives its -wal and -shm files the same mode): state files hold identities, and the
    DICOM index and the forwarding agent's state hold patient names. Callers serialize access
    with their own lock. ``durable`` sets ``synchronous=FULL`` for
    state that must survive a power cut (used nonces).
    """
    db: _Connection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _owner_only(path)
        db = sqlite3.connect(
            path,
            timeout=timeout,
            check_same_thread=False,
            isolation_level=None,
            factory=_Connection,
        )
        db.path = path
        db.execute("PRAGMA journal_mode=WAL")
        if durable:
            db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except OSError as error:
        raise disk_error(error, path) from error
    except sqlite3.Error as error:
        if db is not None:
            db.close()
        mapped = database_error(error, path)
        if mapped is None:
            raise
        raise mapped from error
    return db


def _owner_only(path: Path) -> None:
    """Create ``path`` as 0600 when it is missing; take group and other bits off one that is
    wider (a state file written by an older version)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
