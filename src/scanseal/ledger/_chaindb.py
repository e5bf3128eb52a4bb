"""The embedded chain's working database: py-evm's key-value store in a scratch SQLite file.

py-evm keeps every block, receipt and state-trie node it ever wrote in its database, and
eth-tester's default database is a dict: a gateway's memory grew by about 30 KiB per ledger
transaction (a 2,000-instance study added some 60 MiB). Here the same keys and values live in
an SQLite file instead, with a bounded page cache, so memory stays flat however long the chain.

The file is scratch, not state: the chain's durable record is its journal of signed
transactions (``_chain.EmbeddedChain``), which every open replays into a new, empty file. The
file is unlinked as soon as it is open (no other process ever sees it, a crash leaves nothing
behind, and the disk space returns when the process ends); writes are never synced. Each of
py-evm's atomic batches is one SQLite transaction, with its rollback journal in memory.

A failure of the file itself (a full disk, an I/O error) is LedgerUnavailable, and the store
stays failed: py-evm may have applied half of a block, so the chain refuses all further work
until the process opens it again from the journal.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth_tester import PyEVMBackend
from eth_tester.backends.pyevm.main import generate_genesis_state_for_keys
from eth_utils.crypto import keccak

from scanseal.errors import LedgerUnavailable

CACHE_KIB: Final = 4096
"""SQLite's page cache for the working database, in KiB: recently read trie nodes and blocks."""
_SCHEMA: Final = "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"


class _Scratch(BaseDB):
    """py-evm's key-value interface over one private SQLite file (thread-safe)."""

    def __init__(self, directory: Path | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self.failure: str | None = None
        try:
            handle, name = tempfile.mkstemp(prefix=".chain-", suffix=".sqlite3", dir=directory)
        except OSError as error:
            raise LedgerUnavailable(
                f"cannot create the embedded chain's database in {directory}: {error}"
            ) from None
        os.close(handle)
        try:
            self._db = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode = MEMORY", "synchronous = OFF", "temp_store = MEMORY",
                           "locking_mode = EXCLUSIVE", f"cache_size = -{CACHE_KIB}"):  # fmt: skip
                self._db.execute(f"PRAGMA {pragma}")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as error:
            failure = f"cannot create the embedded chain's database: {error}"
            raise LedgerUnavailable(failure) from None
        finally:
            os.unlink(name)  # the open connection keeps the file; nobody else can reach it

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __getitem__(self, key: bytes) -> bytes:
        with self._guard():
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        with self._guard():
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        with self._guard():
            gone = self._db.execute("DELETE FROM kv WHERE k = ?", (key,)).rowcount
        if not gone:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        with self._guard():
            return self._db.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside are one SQLite transaction (nested ones join the outermost), rolled
        back when the block raises."""
        with self._guard():
            self._depth += 1
            try:
                if self._depth == 1:
                    self._db.execute("BEGIN")
                yield
                if self._depth == 1:
                    self._db.execute("COMMIT")
            except BaseException:
                if self._depth == 1 and self._db.in_transaction:
                    with suppress(sqlite3.Error):  # the store has failed already
                        self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth -= 1

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Hold the lock; a fault of the file fails the store, as LedgerUnavailable."""
        with self._lock:
            if self.failure is not None:
                raise LedgerUnavailable(self.failure)
            try:
                yield
            except sqlite3.Error as error:
                self.failure = (
                    f"the embedded chain's working database failed ({error}); restart the "
                    "gateway to rebuild it from the chain's journal"
                )
                raise LedgerUnavailable(self.failure) from None


class ScratchChainDB(AtomicDB):
    """py-evm's atomic database over :class:`_Scratch`: each atomic batch one transaction."""

    def __init__(self, directory: Path | None) -> None:
        self.scratch = _Scratch(directory)
        super().__init__(self.scratch)

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        with self.scratch.transaction(), super().atomic_batch() as batch:
            yield batch

    def close(self) -> None:
        self.scratch.close()


def embedded_backend(directory: Path | None, genesis: int) -> tuple[PyEVMBackend, ScratchChainDB]:
    """eth-tester's py-evm backend with its genesis block at ``genesis`` (Unix seconds) and its
    database a new scratch file in ``directory`` (None: the system's temporary directory, for
    a read-only replica, which writes nothing beside the chain). The genesis is eth-tester's
    own, so block hashes are those an in-memory chain would mine."""
    params = PyEVMBackend.generate_genesis_params(overrides={"timestamp": genesis})
    backend = PyEVMBackend(genesis_parameters=params)  # on eth-tester's dict, replaced here
    db = ScratchChainDB(directory)
    try:
        state = dict(generate_genesis_state_for_keys(backend.account_keys))
        backend.chain = type(backend.chain).from_genesis(db, params, state)
    except BaseException:
        db.close()
        raise
    _derive_prevrandao(backend.chain)
    return backend, db


def _derive_prevrandao(chain: Any) -> None:
    """Mine every block of ``chain`` with a ``mix_hash`` (prevrandao) derived from its parent's
    hash instead of eth-tester's random one, so a journal replay mines the same block hashes:
    the access mirror's checkpoint names a block by its hash. Nothing here reads prevrandao."""
    mine = chain.mine_block

    def mine_block(*args: Any, **kwargs: Any) -> Any:
        if "mix_hash" in kwargs:
            kwargs["mix_hash"] = keccak(b"scanseal prevrandao" + bytes(chain.header.parent_hash))
        return mine(*args, **kwargs)

    chain.mine_block = mine_block
