"""The embedded block store: IPFS-compatible blocks on local disk, no node needed.

Layout under the root directory (``$SCANSEAL_HOME/blocks`` by default)::

    packs/<N>.pack   append-only pack files: the blocks of one put (or one CAR import),
                     concatenated
    index.sqlite     block key (sha2-256 multihash) -> pack, offset, length; and the pins

Why packs and not one file per block (kubo's flatfs): creating a file per 256 KiB block costs
more than hashing it, so a file-per-block store cannot keep up with SHA-256; one sequential
write per object can. A pack is written completely before its blocks enter the index (one
SQLite transaction, which also pins the object a put stored), so a crash leaves at most an
unreferenced pack, never an index entry pointing at missing bytes. Blocks already present are
not written again.

Durability: a put is durable against a crash of the process (the pack bytes and the index's
WAL frames are in the kernel when it returns); the index runs in WAL mode with
``synchronous=NORMAL``, which keeps it consistent after any crash. A power cut may lose the
last puts: the pack bytes are not fsynced, so an fsync of the index alone (``FULL``) never made
a put survive one, and only cost an fsync per commit. ``durable=True`` (what a replicated store
with a replication queue opens, since its local copy is then the only one when a put returns)
fsyncs the pack, the pack directory and the index commit (``FULL``): a put that returned then
survives a power cut too.

Every read re-hashes the block: disks and copies rot, and the CID is the only authority.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from scanseal._disk import disk_errors, fsync, probe_write
from scanseal._sqlite import open_database
from scanseal.errors import InvalidInput, NotFound
from scanseal.storage._api import BlobStore, ObjectStat, StoreUsage
from scanseal.storage._builder import DagBuilder, Readable, hashed_chunks
from scanseal.storage._cid import CID, DAG_PB
from scanseal.storage._dagpb import decode_file_node
from scanseal.storage._walk import iter_file, open_verified, walk_blocks

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    mh BLOB PRIMARY KEY, pack TEXT NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pins (cid TEXT PRIMARY KEY) WITHOUT ROWID;
"""


class _PackWriter:
    """Appends new blocks to one pack file and remembers where each went.

    Writes happen inline: a helper writer thread was measured slower (GIL hand-offs between
    the hashing and the writing thread cost more than the overlap gains on two cores).
    """

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self.name = f"{uuid.uuid4().hex}.pack"
        self.path = store.packs / self.name
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._offset = 0
        self.entries: list[tuple[bytes, str, int, int]] = []
        self.pin: CID | None = None
        """An object to pin in the transaction that indexes these blocks (a put's root)."""
        self.also: Callable[[sqlite3.Connection], None] | None = None
        """More writes for that transaction (a replicated store's queue row for the root)."""
        self._seen: set[bytes] = set()

    def add(self, cid: CID, block: bytes) -> None:
        key = cid.multihash
        if key in self._seen or self._store.has_block(cid):
            return
        self._seen.add(key)
        view = memoryview(block)
        with disk_errors(self.path, store=True):  # a full disk: one line naming the pack
            while view:
                view = view[os.write(self._fd, view) :]
        self.entries.append((key, self.name, self._offset, len(block)))
        self._offset += len(block)

    def finish(self) -> None:
        try:
            if self.entries and self._store.durable:
                with disk_errors(self.path, store=True):
                    os.fsync(self._fd)
                    fsync(self._store.packs)  # the new pack's directory entry
        finally:
            os.close(self._fd)
        if not self.entries:
            self.path.unlink(missing_ok=True)

    def abort(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)


class EmbeddedStore(BlobStore):
    """A local block store whose CIDs are exactly kubo's ``--cid-version=1`` CIDs."""

    def __init__(self, root: Path, *, durable: bool = False) -> None:
        self.root = Path(root)
        self.durable = durable
        """fsync packs and index commits (see the module docstring)."""
        self.packs = self.root / "packs"
        with disk_errors(self.packs, store=True):
            self.packs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = open_database(self.root / "index.sqlite", _SCHEMA, timeout=30, durable=durable)
        if not durable:
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: consistent after a crash (above)
        self._lock = threading.RLock()
        self._fds: dict[str, int] = {}

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            self._db.close()

    def usage(self) -> StoreUsage:
        """Bytes of the indexed blocks, free space, and a probe write beside the packs."""
        try:
            with self._lock:
                row = self._db.execute("SELECT COALESCE(SUM(len), 0) FROM blocks").fetchone()
            stored: int | None = int(row[0])
        except sqlite3.Error:
            stored = None
        try:
            free: int | None = shutil.disk_usage(self.root).free
        except OSError:
            free = None
        return StoreUsage(str(self.root), stored, free, probe_write(self.packs))

    def put(
        self, stream: Readable, *, also: Callable[[sqlite3.Connection, str], None] | None = None
    ) -> str:
        """Store and pin; ``also(db, cid)`` runs inside the transaction that indexes the blocks
        (the replication queue names the object in that same commit, or neither happens)."""
        with self.batch() as pack:
            builder = DagBuilder(pack.add)
            for chunk, digest in hashed_chunks(stream):
                builder.add_leaf(chunk, digest)
            root = pack.pin = builder.finish()
            if also is not None:
                pack.also = lambda db: also(db, str(root))
        return str(root)

    def get(self, cid: str) -> BinaryIO:
        root = CID.parse(cid)
        self.read_block(root)  # fail early with NotFound rather than on the first read()
        return open_verified(iter_file(root, self.read_block))

    def has(self, cid: str) -> bool:
        return self._missing(CID.parse(cid)) is None

    def pin(self, cid: str) -> None:
        root = CID.parse(cid)
        missing = self._missing(root)
        if missing is not None:
            raise NotFound(f"cannot pin {cid}: block {missing} is not in the local store")
        self._set_pin(root, True)

    def unpin(self, cid: str) -> None:
        self._set_pin(CID.parse(cid), False)

    def pins(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT cid FROM pins ORDER BY cid").fetchall()
        return [str(row[0]) for row in rows]

    def stat(self, cid: str) -> ObjectStat:
        root = CID.parse(cid)
        size = 0
        blocks = 0
        for block_cid, block in walk_blocks(root, self.read_block):
            blocks += 1
            if blocks == 1:
                size = _file_size(block_cid, block)
        return ObjectStat(str(root), size, blocks, self._is_pinned(root))

    # Block level: used by the DAG builder, CAR import/export and replication.

    @contextmanager
    def batch(self) -> Iterator[_PackWriter]:
        """Collect blocks into one pack; they become visible together when the block ends."""
        with disk_errors(self.packs, store=True):
            pack = _PackWriter(self)
        try:
            yield pack
        except BaseException:
            pack.abort()
            raise
        pack.finish()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO blocks VALUES (?, ?, ?, ?)", pack.entries
                )
                if pack.pin is not None:
                    pin = _pin_name(pack.pin)
                    self._db.execute("INSERT OR IGNORE INTO pins VALUES (?)", (pin,))
                if pack.also is not None:
                    pack.also(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The index database inside one write transaction, under the store's lock: for state
        kept beside the blocks (the replication queue), committed on exit, rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add_schema(self, schema: str) -> None:
        """Create more tables in the index database (idempotent ``CREATE ... IF NOT EXISTS``)."""
        with self._lock:
            self._db.executescript(schema)

    def read_block(self, cid: CID) -> bytes:
        """The stored bytes of a block (unverified here; every reader verifies)."""
        where = self._locate(cid)
        if where is None:
            raise NotFound(f"block {cid} is not in the local store")
        pack, offset, length = where
        return os.pread(self._fd(pack), length, offset)

    def has_block(self, cid: CID) -> bool:
        """True when the block is indexed (not verified)."""
        return self._locate(cid) is not None

    def block_location(self, cid: CID) -> tuple[Path, int, int] | None:
        """Pack file, offset and length of a block; for diagnostics and fault tests."""
        where = self._locate(cid)
        return None if where is None else (self.packs / where[0], where[1], where[2])

    def _locate(self, cid: CID) -> tuple[str, int, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT pack, off, len FROM blocks WHERE mh = ?", (cid.multihash,)
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def _fd(self, pack: str) -> int:
        with self._lock:
            fd = self._fds.get(pack)
            if fd is None:
                fd = os.open(self.packs / pack, os.O_RDONLY)
                self._fds[pack] = fd
            return fd

    def _missing(self, root: CID) -> CID | None:
        """The first absent block of the DAG, or None; reads internal nodes only."""
        stack = [root]
        while stack:
            cid = stack.pop()
            if not self.has_block(cid):
                return cid
            if cid.codec == DAG_PB:
                block = self.read_block(cid)
                cid.check(block)
                stack.extend(link.cid for link in decode_file_node(block, cid).links)
        return None

    def _set_pin(self, cid: CID, pinned: bool) -> None:
        name = _pin_name(cid)
        with self._lock:
            if pinned:
                self._db.execute("INSERT OR IGNORE INTO pins VALUES (?)", (name,))
            else:
                self._db.execute("DELETE FROM pins WHERE cid = ?", (name,))

    def _is_pinned(self, cid: CID) -> bool:
        name = _pin_name(cid)
        with self._lock:
            row = self._db.execute("SELECT 1 FROM pins WHERE cid = ?", (name,)).fetchone()
        return row is not None


def _pin_name(cid: CID) -> str:
    """How ``pins`` names an object: its CIDv1 text (any version or form of it pins the same)."""
    return str(CID(1, cid.codec, cid.digest))


def _file_size(cid: CID, block: bytes) -> int:
    if cid.codec != DAG_PB:
        return len(block)
    node = decode_file_node(block, cid)
    if node.filesize is None:
        raise InvalidInput(f"{cid} does not record its file size")
    return node.filesize
