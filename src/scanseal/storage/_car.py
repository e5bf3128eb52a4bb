"""CAR v1 (Content Addressable aRchive) export and import.

Format, as emitted: ``varint(len(header)) header`` where header is the DAG-CBOR map
``{"roots": [CID], "version": 1}`` (keys in DAG-CBOR canonical order, the CID as tag 42 over a
0x00-prefixed binary CID); then, for each block of the DAG in depth-first pre-order, each block
once: ``varint(len(cid) + len(block)) cid block``. kubo's ``ipfs dag import`` and js-ipfs read
it as is. Import verifies every block against its CID before storing it and refuses anything
but CAR v1 with sha2-256 raw or dag-pb blocks.
"""

from __future__ import annotations

from collections.abc import Iterator

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.storage._builder import Readable
from scanseal.storage._cid import CID, encode_varint
from scanseal.storage._embedded import EmbeddedStore
from scanseal.storage._walk import MAX_BLOCK, walk_blocks

_MAX_HEADER = 64 * 1024


def car_header(root: CID) -> bytes:
    """The length-prefixed DAG-CBOR header naming one root."""
    link = b"\x00" + root.to_bytes()
    body = (
        b"\xa2"  # map(2)
        + b"\x65roots"
        + b"\x81"  # array(1)
        + b"\xd8\x2a"  # tag(42)
        + _cbor_bytes_head(len(link))
        + link
        + b"\x67version"
        + b"\x01"
    )
    return encode_varint(len(body)) + body


def export_car(store: EmbeddedStore, cid: str) -> Iterator[bytes]:
    """Yield the CAR v1 bytes of the object ``cid``, every block verified on the way out."""
    root = CID.parse(cid)
    yield car_header(root)
    for block_cid, block in walk_blocks(root, store.read_block):
        key = block_cid.to_bytes()
        yield encode_varint(len(key) + len(block)) + key
        yield block


def import_car(store: EmbeddedStore, source: Readable) -> list[str]:
    """Store every block of a CAR v1 stream (verified); pin and return its complete roots."""
    roots = _read_header(source)
    with store.batch() as pack:
        while True:
            length = _read_varint(source)
            if length is None:
                break
            if length > MAX_BLOCK + 64:
                raise InvalidInput(f"CAR section of {length} bytes is too large")
            section = _read_exact(source, length)
            cid, start = CID.decode(section, 0)
            block = section[start:]
            if not cid.matches(block):
                raise IntegrityError(f"block {cid} in the CAR does not match its CID")
            pack.add(cid, block)
    names = [str(root) for root in roots]
    for name in names:
        store.pin(name)
    return names


def _read_header(source: Readable) -> list[CID]:
    length = _read_varint(source)
    if length is None or length > _MAX_HEADER:
        raise InvalidInput("not a CAR file: missing or oversized header")
    header = _read_exact(source, length)
    if b"\x67version\x02" in header:
        raise InvalidInput("CAR v2 is not supported; export as CAR v1")
    return _roots(header)


def _roots(header: bytes) -> list[CID]:
    """Pull the tag-42 CIDs out of the header map; the map itself is checked loosely."""
    if header[:1] != b"\xa2" or b"\x65roots" not in header or b"\x67version\x01" not in header:
        raise InvalidInput("not a CAR v1 header")
    roots: list[CID] = []
    pos = header.index(b"\x65roots") + 6
    count = header[pos] - 0x80
    if not 0 <= count < 24:
        raise InvalidInput("unsupported CAR header: roots array")
    pos += 1
    for _ in range(count):
        if header[pos : pos + 2] != b"\xd8\x2a":
            raise InvalidInput("unsupported CAR header: root is not a CID link")
        pos += 2
        length, pos = _cbor_bytes_len(header, pos)
        link = header[pos : pos + length]
        if link[:1] != b"\x00":
            raise InvalidInput("unsupported CAR header: CID link prefix")
        cid, end = CID.decode(link, 1)
        if end != length:
            raise InvalidInput("unsupported CAR header: CID length")
        roots.append(cid)
        pos += length
    if not roots:
        raise InvalidInput("CAR has no root")
    return roots


def _cbor_bytes_head(length: int) -> bytes:
    if length < 24:
        return bytes((0x40 + length,))
    if length < 256:
        return bytes((0x58, length))
    return b"\x59" + length.to_bytes(2, "big")


def _cbor_bytes_len(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if 0x40 <= first < 0x58:
        return first - 0x40, pos + 1
    if first == 0x58:
        return data[pos + 1], pos + 2
    if first == 0x59:
        return int.from_bytes(data[pos + 1 : pos + 3], "big"), pos + 3
    raise InvalidInput("unsupported CAR header: CID bytes")


def _read_varint(source: Readable) -> int | None:
    value = 0
    shift = 0
    while True:
        byte = source.read(1)
        if not byte:
            if shift:
                raise InvalidInput("truncated CAR: cut inside a length")
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise InvalidInput("CAR length varint too long")


def _read_exact(source: Readable, length: int) -> bytes:
    data = source.read(length)
    while len(data) < length:
        more = source.read(length - len(data))
        if not more:
            raise InvalidInput(f"truncated CAR: expected {length} bytes, got {len(data)}")
        data += more
    return data
