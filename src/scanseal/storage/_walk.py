"""Verified reading of a UnixFS file DAG from an untrusted block source.

The walker checks every block against its CID before using it: internal nodes before their
links are followed, leaves before their bytes are handed to the caller. So a caller never
receives a byte that is not proven by the root CID, and a bad block is named in the error.
Memory stays bounded: one block, plus the chain of internal nodes from the root to the
current leaf.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.storage._cid import CID, DAG_PB, RAW
from scanseal.storage._dagpb import decode_file_node

MAX_BLOCK = 4 * 1024 * 1024
_MAX_DEPTH = 32

FetchBlock = Callable[[CID], bytes]
"""Return the bytes a source holds for a block (unverified; the walker checks them)."""

ReadLeaf = Callable[[CID, int, int | None], bytes]
"""Return ``size`` bytes of file content at ``offset`` claimed to be the raw leaf ``cid``."""


def iter_file(root: CID, fetch: FetchBlock, read_leaf: ReadLeaf | None = None) -> Iterator[bytes]:
    """Yield the verified content of the file ``root``, in order."""
    return _walk(root, 0, None, fetch, read_leaf, 0)


def _fetch(cid: CID, fetch: FetchBlock) -> bytes:
    block = fetch(cid)
    if len(block) > MAX_BLOCK:
        raise IntegrityError(f"block {cid} is larger than {MAX_BLOCK} bytes")
    cid.check(block)
    return block


def _walk(
    cid: CID,
    offset: int,
    size: int | None,
    fetch: FetchBlock,
    read_leaf: ReadLeaf | None,
    depth: int,
) -> Iterator[bytes]:
    if depth > _MAX_DEPTH:
        raise InvalidInput(f"DAG under {cid} is deeper than {_MAX_DEPTH} levels")
    if cid.codec == RAW:
        data = read_leaf(cid, offset, size) if read_leaf else fetch(cid)
        if len(data) > MAX_BLOCK:
            raise IntegrityError(f"block {cid} is larger than {MAX_BLOCK} bytes")
        cid.check(data)
        if size is not None and len(data) != size:
            raise IntegrityError(f"block {cid} is {len(data)} bytes, its parent says {size}")
        yield data
        return
    node = decode_file_node(_fetch(cid, fetch), cid)
    if size is not None and node.filesize is not None and node.filesize != size:
        raise IntegrityError(f"block {cid} holds {node.filesize} bytes, its parent says {size}")
    start = offset
    if node.data:
        yield node.data
        offset += len(node.data)
    sizes: list[int | None] = list(node.blocksizes) or [None] * len(node.links)
    for link, child_size in zip(node.links, sizes, strict=True):
        for piece in _walk(link.cid, offset, child_size, fetch, read_leaf, depth + 1):
            offset += len(piece)
            yield piece
    if node.filesize is not None and offset - start != node.filesize:
        raise IntegrityError(
            f"block {cid} says {node.filesize} bytes, its DAG holds {offset - start}"
        )


def walk_blocks(root: CID, fetch: FetchBlock) -> Iterator[tuple[CID, bytes]]:
    """Yield every block of the DAG, verified, depth-first pre-order, each CID once."""
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        key = cid.to_bytes()
        if key in seen:
            continue
        seen.add(key)
        block = _fetch(cid, fetch)
        yield cid, block
        if cid.codec == DAG_PB:
            links = decode_file_node(block, cid).links
            stack.extend(link.cid for link in reversed(links))


class VerifiedStream(io.RawIOBase):
    """A read-only binary stream over verified pieces; errors surface from :meth:`read`."""

    def __init__(self, pieces: Iterator[bytes], on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._pieces = pieces
        self._current = memoryview(b"")
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._current:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._current = memoryview(piece)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
            if self._on_close is not None:
                self._on_close()
        super().close()


def open_verified(
    pieces: Iterator[bytes], on_close: Callable[[], None] | None = None
) -> io.BufferedReader:
    """Wrap verified pieces as a buffered binary file object."""
    return io.BufferedReader(VerifiedStream(pieces, on_close), buffer_size=256 * 1024)
