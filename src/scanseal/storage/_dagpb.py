"""The dag-pb node and UnixFS ``Data`` encodings, byte for byte as kubo writes them.

A dag-pb node is the protobuf ``PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }``
serialised links first, then data (the canonical dag-pb order). Each link carries the child's
binary CID, an empty ``Name`` (present, as kubo and js-ipfs both write it) and ``Tsize``, the
cumulative size of the child's DAG. UnixFS ``Data`` for a file node is ``Type = File``, then
``filesize``, then one unpacked ``blocksizes`` entry per child (proto2 repeated, not packed).
These details decide the CID; the golden vectors in ``tests/storage/vectors`` pin them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.storage._cid import CID, decode_varint, encode_varint

UNIXFS_RAW = 0
UNIXFS_FILE = 2
_FILE_TYPES = (UNIXFS_RAW, UNIXFS_FILE)
_VARINT = 0
_BYTES = 2


@dataclass(frozen=True, slots=True)
class Link:
    """One child of a dag-pb node."""

    cid: CID
    tsize: int


@dataclass(frozen=True, slots=True)
class FileNode:
    """A decoded UnixFS file node: its own data (usually empty), children and their sizes."""

    links: list[Link]
    data: bytes = b""
    filesize: int | None = None
    blocksizes: list[int] = field(default_factory=list)


def _key(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def _bytes_field(number: int, value: bytes) -> bytes:
    return _key(number, _BYTES) + encode_varint(len(value)) + value


def encode_file_node(links: list[Link], filesize: int, blocksizes: list[int]) -> bytes:
    """Encode an internal UnixFS file node (no inline data) as a dag-pb block."""
    unixfs = bytearray(_key(1, _VARINT) + encode_varint(UNIXFS_FILE))
    unixfs += _key(3, _VARINT) + encode_varint(filesize)
    for size in blocksizes:
        unixfs += _key(4, _VARINT) + encode_varint(size)
    out = bytearray()
    for link in links:
        body = _bytes_field(1, link.cid.to_bytes()) + _bytes_field(2, b"")
        body += _key(3, _VARINT) + encode_varint(link.tsize)
        out += _bytes_field(2, body)
    out += _bytes_field(1, bytes(unixfs))
    return bytes(out)


def _fields(data: bytes | memoryview) -> list[tuple[int, int, int | memoryview]]:
    """Split a protobuf message into ``(field number, wire type, value)`` triples."""
    view = memoryview(data)
    pos = 0
    out: list[tuple[int, int, int | memoryview]] = []
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = decode_varint(view, pos)
            out.append((number, wire, value))
        elif wire == _BYTES:
            length, pos = decode_varint(view, pos)
            if pos + length > len(view):
                raise InvalidInput("truncated protobuf field")
            out.append((number, wire, view[pos : pos + length]))
            pos += length
        else:
            raise InvalidInput(f"unsupported protobuf wire type {wire}")
    return out


def _decode_link(body: memoryview) -> Link:
    cid: CID | None = None
    tsize = 0
    for number, _wire, value in _fields(body):
        if number == 1 and isinstance(value, memoryview):
            cid, end = CID.decode(value, 0)
            if end != len(value):
                raise InvalidInput("trailing bytes in a dag-pb link hash")
        elif number == 3 and isinstance(value, int):
            tsize = value
    if cid is None:
        raise InvalidInput("dag-pb link without a hash")
    return Link(cid, tsize)


def decode_file_node(block: bytes, cid: CID) -> FileNode:
    """Decode a dag-pb block that must be a UnixFS file (or raw) node."""
    links: list[Link] = []
    unixfs: memoryview | None = None
    for number, _wire, value in _fields(block):
        if number == 2 and isinstance(value, memoryview):
            links.append(_decode_link(value))
        elif number == 1 and isinstance(value, memoryview):
            unixfs = value
    if unixfs is None:
        raise InvalidInput(f"block {cid} is not a UnixFS node")
    kind = -1
    data = b""
    filesize: int | None = None
    sizes: list[int] = []
    for number, wire, value in _fields(unixfs):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, memoryview):
            data = bytes(value)
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4:
            sizes.extend(_blocksizes(wire, value))
    if kind not in _FILE_TYPES:
        raise InvalidInput(f"{cid} is not a file (UnixFS type {kind})")
    if sizes and len(sizes) != len(links):
        raise IntegrityError(f"block {cid}: {len(links)} links but {len(sizes)} block sizes")
    return FileNode(links, data, filesize, sizes)


def _blocksizes(wire: int, value: int | memoryview) -> list[int]:
    """Accept blocksizes packed or unpacked: readers should be liberal, writers exact."""
    if wire == _VARINT and isinstance(value, int):
        return [value]
    assert isinstance(value, memoryview)
    out: list[int] = []
    pos = 0
    while pos < len(value):
        size, pos = decode_varint(value, pos)
        out.append(size)
    return out
