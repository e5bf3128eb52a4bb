"""The operator's append-only log for batched mode, kept on disk so nothing pending is lost.

Each entry (a record or an access event) is ABI-encoded into one leaf of an RFC 6962 Merkle tree.
The file holds one entry per line and is flushed on every append, so a crash of the process
between append and anchor loses nothing: reopening rebuilds the tree and the ledger anchors what
is pending. What has been anchored is decided by the chain, never by this file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import is_address, to_checksum_address

from scanseal._json import parse_object
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.integrity.merkle import MerkleTree, leaf_hash

_ENTRY_TYPES = [
    "uint8",  # kind
    "bytes32",  # record id
    "bytes",  # cid (records)
    "bytes32",  # image hash H1
    "bytes32",  # H3
    "bytes32",  # pixel digest
    "address",  # actor: uploader or accessor
    "uint64",  # timestamp (operator clock; the anchor's block time bounds it)
    "uint8",  # access type
    "bool",  # allowed
    "uint8",  # reason
    "address",  # reporter (the log operator)
]
_ZERO32 = bytes(32)
_CID_OFFSET = (32 * len(_ENTRY_TYPES)).to_bytes(32, "big")  # the one dynamic field follows the head
_KIND_CODES = {"record": 1, "access": 2}
_KIND_NAMES = {code: name for name, code in _KIND_CODES.items()}


@dataclass(frozen=True)
class Entry:
    """One leaf of the batched log: a stored record or an access attempt."""

    kind: Literal["record", "access"]
    record_id: bytes
    actor: str
    timestamp: int
    reporter: str
    cid: bytes = b""
    image_hash: bytes = _ZERO32
    h3: bytes = _ZERO32
    pixel_digest: bytes = _ZERO32
    access_type: int = 0
    allowed: bool = False
    reason: int = 0

    def encode(self) -> bytes:
        """The canonical leaf data (Solidity ABI encoding, so a contract could check it too).

        The layout is fixed, so it is written directly — a gateway appends one entry per fetch
        and eth_abi's generic encoder cost more than the rest of the append. Anything outside
        the simple cases goes through eth_abi, which encodes or refuses it as it always did.
        """
        if not self._plain():
            return self._abi_encode()
        return b"".join(
            (
                _word(_KIND_CODES[self.kind]),
                self.record_id,
                _CID_OFFSET,
                self.image_hash,
                self.h3,
                self.pixel_digest,
                _address_word(self.actor),
                _word(self.timestamp),
                _word(self.access_type),
                _word(int(self.allowed)),
                _word(self.reason),
                _address_word(self.reporter),
                _word(len(self.cid)),
                self.cid,
                bytes(-len(self.cid) % 32),
            )
        )

    def _plain(self) -> bool:
        """Whether every field is one the direct encoding writes exactly as eth_abi would."""
        return (
            self.kind in _KIND_CODES
            and all(
                type(value) is bytes and len(value) == 32
                for value in (self.record_id, self.image_hash, self.h3, self.pixel_digest)
            )
            and type(self.cid) is bytes
            and all(isinstance(a, str) and len(a) == 42 and is_address(a) for a in self._addresses)
            and type(self.allowed) is bool
            and all(
                type(value) is int and 0 <= value < limit
                for value, limit in (
                    (self.timestamp, 2**64), (self.access_type, 256), (self.reason, 256),
                )
            )
        )  # fmt: skip

    @property
    def _addresses(self) -> tuple[str, str]:
        return self.actor, self.reporter

    def _abi_encode(self) -> bytes:
        return abi_encode(
            _ENTRY_TYPES,
            [
                _KIND_CODES[self.kind],
                self.record_id,
                self.cid,
                self.image_hash,
                self.h3,
                self.pixel_digest,
                self.actor,
                self.timestamp,
                self.access_type,
                self.allowed,
                self.reason,
                self.reporter,
            ],
        )

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        """Parse leaf data; IntegrityError if it is not a well-formed entry."""
        try:
            values = abi_decode(_ENTRY_TYPES, data, strict=True)
        except Exception as error:
            raise IntegrityError(f"batched entry is malformed: {error}") from error
        kind = _KIND_NAMES.get(int(values[0]))
        if kind is None:
            raise IntegrityError(f"batched entry has unknown kind {values[0]}")
        entry = cls(
            kind="record" if kind == "record" else "access",
            record_id=bytes(values[1]),
            cid=bytes(values[2]),
            image_hash=bytes(values[3]),
            h3=bytes(values[4]),
            pixel_digest=bytes(values[5]),
            actor=to_checksum_address(values[6]),
            timestamp=int(values[7]),
            access_type=int(values[8]),
            allowed=bool(values[9]),
            reason=int(values[10]),
            reporter=to_checksum_address(values[11]),
        )
        if entry.encode() != data:
            raise IntegrityError("batched entry is not canonically encoded")
        return entry


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


class BatchLog:
    """The operator's log file and the Merkle tree over it."""

    def __init__(self, path: Path, *, durable: bool = False, read_only: bool = False) -> None:
        """``read_only``: a reader beside the writing process (an audit, a proof export): it
        neither creates the file nor cuts a torn last line the writer may still be writing."""
        self.path = path
        self._durable = durable
        self._read_only = read_only
        self.tree = MerkleTree()
        self._entries: list[bytes] = []
        self._blocks: list[int | None] = []
        self._by_record: dict[bytes, list[int]] = {}
        self._records: dict[bytes, int] = {}  # record id -> index of its (first) record entry
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._load()
        self._file = None if read_only else path.open("a", encoding="ascii")

    @property
    def size(self) -> int:
        """Number of entries appended (anchored or not)."""
        return self.tree.size

    def append(self, entry: Entry, block: int | None = None) -> int:
        """Add an entry, write it through to the file, and return its index. ``block``: the
        chain head the writer had seen, kept beside the leaf (not in it) so the audit trail
        can put the entry in chain order."""
        data = entry.encode()
        line: dict[str, object] = {"entry": data.hex()}
        if block is not None:
            line["block"] = block
        if self._file is None:
            raise InvalidInput(f"{self.path} is open read-only")
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        if self._durable:
            os.fsync(self._file.fileno())
        return self._add(data, block)

    def sync(self) -> None:
        """Force appended entries to stable storage (called before anchoring)."""
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())

    def entry(self, index: int) -> bytes:
        """The encoded entry at `index`."""
        if not 0 <= index < len(self._entries):
            raise InvalidInput(f"no batched entry #{index}")
        return self._entries[index]

    def block_at(self, index: int) -> int | None:
        """The chain head seen when entry ``index`` was written (None in older logs)."""
        return self._blocks[index]

    def record_index(self, record_id: bytes) -> int | None:
        """Index of the entry that stored ``record_id``, if this log holds one."""
        return self._records.get(record_id)

    def indexes_for(self, record_id: bytes) -> list[int]:
        """Indexes of every entry about one record, oldest first."""
        return list(self._by_record.get(record_id, []))

    def close(self) -> None:
        """Close the file; entries already appended stay on disk."""
        if self._file is not None:
            self._file.close()

    def _add(self, data: bytes, block: int | None) -> int:
        index = self.tree.append_leaf_hash(leaf_hash(data))
        self._entries.append(data)
        self._blocks.append(block)
        record_id = data[32:64]
        self._by_record.setdefault(record_id, []).append(index)
        if data[31] == _KIND_CODES["record"]:
            self._records.setdefault(record_id, index)
        return index

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        good = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn write: the entry was never acknowledged
            try:
                parsed = parse_object(line, "batched log line")
                data = bytes.fromhex(parsed["entry"])
                block = parsed.get("block")
                if block is not None and (type(block) is not int or block < 0):
                    raise ValueError(f"block {block!r} is not a block number")
            except (InvalidInput, ValueError, KeyError, TypeError) as error:
                raise IntegrityError(f"{self.path}: unreadable entry: {error}") from error
            Entry.decode(data)
            self._add(data, block)
            good += len(line)
        if good != len(raw) and not self._read_only:
            with self.path.open("r+b") as handle:
                handle.truncate(good)
