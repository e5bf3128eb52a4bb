"""Streaming construction of the UnixFS DAG kubo builds for ``ipfs add --cid-version=1``.

Parameters: fixed 256 KiB chunks, raw leaves, balanced layout with at most 174 links per node,
sha2-256, CIDv1. The builder is push-based so one pass over the bytes can feed a block store, an
HTTP upload and the CID computation at once, with memory bounded by one chunk plus one pending
row of at most 174 links per tree level.

Balanced layout, as kubo's ``balanced.Layout`` produces it: leaves are grouped left to right
into nodes of 174; those nodes are grouped the same way, level after level, until one node
remains. A partial group is still wrapped in a node (so 175 chunks give a root over a full node
and a node holding one leaf); only a file of a single chunk is its own root, a raw block.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from scanseal.storage._cid import CID, DAG_PB, RAW
from scanseal.storage._dagpb import Link, encode_file_node

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174

BlockSink = Callable[[CID, bytes], None]


class Readable(Protocol):
    """Anything with a binary ``read(n)``: an open file, a socket file, ``io.BytesIO``."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Child:
    link: Link
    filesize: int


def _discard(_cid: CID, _block: bytes) -> None:
    """Sink for computing a CID without keeping any block."""


class DagBuilder:
    """Feed bytes, then :meth:`finish` to get the root CID; every block goes to ``sink``."""

    def __init__(self, sink: BlockSink = _discard) -> None:
        self._sink = sink
        self._pending = bytearray()
        self._levels: list[list[_Child]] = [[]]
        self._any = False
        self.size = 0

    def feed(self, data: bytes) -> None:
        """Add bytes of the file, in any slicing; full chunks are emitted as they complete."""
        self.size += len(data)
        if not self._pending and len(data) == CHUNK_SIZE:
            self._leaf(data)
            return
        self._pending += data
        while len(self._pending) >= CHUNK_SIZE:
            self._leaf(bytes(self._pending[:CHUNK_SIZE]))
            del self._pending[:CHUNK_SIZE]

    def finish(self) -> CID:
        """Emit the last chunk and the pending internal nodes; return the root CID."""
        if self._pending or not self._any:
            self._leaf(bytes(self._pending))
            self._pending.clear()
        levels = self._levels
        depth = 0
        while True:
            row = levels[depth]
            if depth == len(levels) - 1 and len(row) == 1:
                return row[0].link.cid
            if row:
                levels[depth] = []
                self._push(depth + 1, self._node(row))
            depth += 1

    def add_leaf(self, chunk: bytes, digest: bytes) -> None:
        """Add one whole chunk whose SHA-256 was computed elsewhere (see :func:`hashed_chunks`).

        Only for chunks as :func:`iter_chunks` cuts them: full ones, and a short one last.
        """
        if self._pending:
            raise ValueError("add_leaf cannot follow a partial feed()")
        self.size += len(chunk)
        self._leaf(chunk, digest)

    def _leaf(self, chunk: bytes, digest: bytes | None = None) -> None:
        self._any = True
        cid = CID.of_block(RAW, chunk) if digest is None else CID(1, RAW, digest)
        self._sink(cid, chunk)
        self._push(0, _Child(Link(cid, len(chunk)), len(chunk)))

    def _push(self, depth: int, child: _Child) -> None:
        if depth == len(self._levels):
            self._levels.append([])
        row = self._levels[depth]
        row.append(child)
        if len(row) == MAX_LINKS:
            self._levels[depth] = []
            self._push(depth + 1, self._node(row))

    def _node(self, row: list[_Child]) -> _Child:
        sizes = [child.filesize for child in row]
        total = sum(sizes)
        links = [child.link for child in row]
        block = encode_file_node(links, total, sizes)
        cid = CID.of_block(DAG_PB, block)
        self._sink(cid, block)
        return _Child(Link(cid, len(block) + sum(link.tsize for link in links)), total)


def iter_chunks(source: Readable, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield full ``size`` chunks from ``source`` (looping over short reads), then the rest."""
    while True:
        chunk = source.read(size)
        if not chunk:
            return
        while len(chunk) < size:
            more = source.read(size - len(chunk))
            if not more:
                yield chunk
                return
            chunk += more
        yield chunk


def hashed_chunks(source: Readable, lookahead: int = 2) -> Iterator[tuple[bytes, bytes]]:
    """Chunks of ``source`` with their SHA-256, hashed on a worker thread a few chunks ahead.

    hashlib releases the GIL, so on a second core the hashing overlaps reading the source and
    whatever the consumer does with each block (writing it to a pack, say). Memory stays
    bounded by ``lookahead + 1`` chunks. The worker starts with the second chunk: a source of
    one chunk (a manifest, a grant object) is hashed inline, as starting a thread cost more
    than such an object's whole put.
    """
    chunks = iter_chunks(source)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None:
        yield first, _sha256(first)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="leaf-sha256") as pool:
        pending: deque[tuple[bytes, Future[bytes]]] = deque()
        pending.append((first, pool.submit(_sha256, first)))
        pending.append((second, pool.submit(_sha256, second)))
        del first, second  # held by ``pending`` alone, so dropped once consumed
        for chunk in chunks:
            pending.append((chunk, pool.submit(_sha256, chunk)))
            if len(pending) > lookahead:
                done, digest = pending.popleft()
                yield done, digest.result()
        while pending:
            done, digest = pending.popleft()
            yield done, digest.result()


def _sha256(chunk: bytes) -> bytes:
    return hashlib.sha256(chunk).digest()


def build(source: Readable, sink: BlockSink = _discard) -> tuple[CID, int]:
    """Read ``source`` to its end, send every block to ``sink``; return (root CID, size).

    Hashes inline: this serves small, frequent computations (``cid_of``), where starting the
    worker thread of :func:`hashed_chunks` would cost more than it overlaps.
    """
    builder = DagBuilder(sink)
    for chunk in iter_chunks(source):
        builder.feed(chunk)
    return builder.finish(), builder.size
