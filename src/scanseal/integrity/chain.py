"""The paper's three-link hash chain binding an image's bytes, its metadata and its upload time.

    H1 = SHA-256(raw file bytes)
    H2 = SHA-256(H1 || canonical metadata bytes)
    H3 = SHA-256(H2 || timestamp as 8-byte big-endian unsigned Unix seconds)

H1 and H2 are 32 bytes and the timestamp is 8, so every concatenation has exactly one split and no
two different inputs share a preimage layout. The timestamp encoding is the big-endian form of the
uint64 the ledger stores, so the contract can recompute H3 from what it already holds. Canonical
metadata bytes come from `scanseal.ingest.ImageMetadata.canonical_bytes()`; this module takes
them as opaque bytes so the chain does not depend on how metadata is parsed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scanseal.errors import IntegrityError, InvalidInput

DIGEST_SIZE = 32
"""Length in bytes of H1, H2 and H3 (SHA-256)."""

TIMESTAMP_SIZE = 8
"""Length in bytes of the encoded timestamp hashed into H3."""

_MAX_TIMESTAMP = (1 << (8 * TIMESTAMP_SIZE)) - 1
_HEX_DIGITS = frozenset("0123456789abcdef")
_DICT_KEYS = frozenset({"h1", "h2", "h3", "timestamp"})


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> bytes:
    """SHA-256 of a file's bytes, read in `chunk_size` pieces so memory stays bounded.

    A file that cannot be read is the caller's input problem, so OSError becomes InvalidInput.
    """
    if chunk_size <= 0:
        raise InvalidInput(f"chunk size must be positive, got {chunk_size}")
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(chunk_size))
    try:
        with Path(path).open("rb") as stream:
            while count := stream.readinto(buffer):
                digest.update(buffer[:count])
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.digest()


@dataclass(frozen=True)
class HashChain:
    """H1, H2, H3 of one image and the timestamp that went into H3.

    Construction checks lengths and range only; whether the links agree with each other and with
    the file is `verify_chain`'s job, because only it has the file's H1 and the metadata.
    """

    h1: bytes
    h2: bytes
    h3: bytes
    timestamp: int

    def __post_init__(self) -> None:
        for name in ("h1", "h2", "h3"):
            _check_digest(getattr(self, name), name)
        _check_timestamp(self.timestamp)

    def to_dict(self) -> dict[str, str | int]:
        """Plain form for JSON manifests: lowercase hex digests and the integer timestamp."""
        return {
            "h1": self.h1.hex(),
            "h2": self.h2.hex(),
            "h3": self.h3.hex(),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> HashChain:
        """Parse the form `to_dict` writes, and nothing looser, so each chain has one encoding."""
        keys = set(d)
        if keys != _DICT_KEYS:
            raise InvalidInput(f"hash chain needs exactly the keys {sorted(_DICT_KEYS)}")
        return cls(
            h1=_parse_hex_digest(d["h1"], "h1"),
            h2=_parse_hex_digest(d["h2"], "h2"),
            h3=_parse_hex_digest(d["h3"], "h3"),
            timestamp=_check_timestamp(d["timestamp"]),
        )


def hash_chain(h1: bytes, canonical_metadata: bytes, timestamp: int) -> HashChain:
    """Build the chain from a file's H1 (see `sha256_file`), its canonical metadata and a time."""
    _check_digest(h1, "h1")
    _check_metadata(canonical_metadata)
    _check_timestamp(timestamp)
    h2 = _link_h2(h1, canonical_metadata)
    return HashChain(h1=h1, h2=h2, h3=_link_h3(h2, timestamp), timestamp=timestamp)


def verify_chain(chain: HashChain, h1: bytes, canonical_metadata: bytes) -> None:
    """Check a recorded chain against a file's H1 and its canonical metadata.

    Links are checked in order and the first that fails is named (H1: the file's bytes changed;
    H2: the metadata changed; H3: the timestamp or H3 itself changed), so an auditor learns what
    was altered rather than only that something was.
    """
    _check_digest(h1, "h1")
    _check_metadata(canonical_metadata)
    if chain.h1 != h1:
        raise IntegrityError("hash chain link H1 failed: the file's bytes do not match")
    if chain.h2 != _link_h2(h1, canonical_metadata):
        raise IntegrityError("hash chain link H2 failed: the metadata does not match")
    if chain.h3 != _link_h3(chain.h2, chain.timestamp):
        raise IntegrityError("hash chain link H3 failed: the timestamp does not match")


def encode_timestamp(timestamp: int) -> bytes:
    """The 8-byte big-endian unsigned encoding of Unix seconds hashed into H3."""
    _check_timestamp(timestamp)
    return timestamp.to_bytes(TIMESTAMP_SIZE, "big")


def _link_h2(h1: bytes, canonical_metadata: bytes) -> bytes:
    return hashlib.sha256(h1 + canonical_metadata).digest()


def _link_h3(h2: bytes, timestamp: int) -> bytes:
    return hashlib.sha256(h2 + encode_timestamp(timestamp)).digest()


def _check_digest(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != DIGEST_SIZE:
        raise InvalidInput(f"{name} must be {DIGEST_SIZE} bytes")


def _check_metadata(value: object) -> None:
    if not isinstance(value, bytes):
        raise InvalidInput("canonical metadata must be bytes")


def _check_timestamp(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("timestamp must be an integer number of Unix seconds")
    if not 0 <= value <= _MAX_TIMESTAMP:
        raise InvalidInput(f"timestamp {value} does not fit in {TIMESTAMP_SIZE} unsigned bytes")
    return value


def _parse_hex_digest(value: object, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * DIGEST_SIZE or set(value) - _HEX_DIGITS:
        raise InvalidInput(f"{name} must be {2 * DIGEST_SIZE} lowercase hex digits")
    return bytes.fromhex(value)


__all__ = [
    "DIGEST_SIZE",
    "TIMESTAMP_SIZE",
    "HashChain",
    "encode_timestamp",
    "hash_chain",
    "sha256_file",
    "verify_chain",
]
