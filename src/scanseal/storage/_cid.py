"""CIDv1 and multihash handling, written out so the byte layout is auditable.

Only what ScanSeal emits and checks is supported: CID versions 0 and 1, the ``raw`` (0x55) and
``dag-pb`` (0x70) codecs, and sha2-256 multihashes. Any other CID is refused with
:class:`~scanseal.errors.InvalidInput` rather than trusted without a hash check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from scanseal.errors import IntegrityError, InvalidInput

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as used by multiformats, protobuf and CAR."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return ``(value, next position)``; refuse truncated or over-long varints."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise InvalidInput("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise InvalidInput("varint longer than 64 bits")


@dataclass(frozen=True, slots=True)
class CID:
    """A content identifier: version, codec and the sha2-256 digest of the block."""

    version: int
    codec: int
    digest: bytes

    @classmethod
    def of_block(cls, codec: int, block: bytes | memoryview) -> CID:
        """The CIDv1 of ``block`` under ``codec``."""
        return cls(1, codec, hashlib.sha256(block).digest())

    @property
    def multihash(self) -> bytes:
        """sha2-256 multihash bytes: code, length, digest."""
        return bytes((SHA2_256, _DIGEST_LEN)) + self.digest

    def to_bytes(self) -> bytes:
        """Binary form (what dag-pb links and CAR sections carry)."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return _b58encode(self.multihash)
        text = base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")
        return "b" + text

    def matches(self, block: bytes | memoryview) -> bool:
        """True when ``block`` hashes to this CID (constant-time compare of digests)."""
        return hmac.compare_digest(hashlib.sha256(block).digest(), self.digest)

    def check(self, block: bytes | memoryview, where: str = "") -> None:
        """Raise :class:`IntegrityError` naming this block when ``block`` does not match."""
        if not self.matches(block):
            origin = f" (served by {where})" if where else ""
            raise IntegrityError(f"block {self} does not match its CID{origin}")

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CIDv1 in base32 (``b…``) or a CIDv0 (``Qm…``)."""
        text = text.strip()
        if text.startswith("Qm") and len(text) == 46:
            return cls._from_multihash(0, DAG_PB, _b58decode(text))
        if not text.startswith("b") or len(text) < 2:
            raise InvalidInput(f"not a base32 CIDv1 or a CIDv0: {text!r}")
        body = text[1:].upper()
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError as error:
            raise InvalidInput(f"not a base32 CID: {text!r}") from error
        cid, end = cls.decode(raw, 0)
        if end != len(raw):
            raise InvalidInput(f"trailing bytes after CID: {text!r}")
        return cid

    @classmethod
    def decode(cls, data: bytes | memoryview, pos: int) -> tuple[CID, int]:
        """Decode a binary CID at ``pos``; return it and the position after it."""
        if len(data) - pos >= 2 and data[pos] == SHA2_256 and data[pos + 1] == _DIGEST_LEN:
            end = pos + 2 + _DIGEST_LEN
            return cls._from_multihash(0, DAG_PB, bytes(data[pos:end])), end
        version, pos = decode_varint(data, pos)
        if version != 1:
            raise InvalidInput(f"unsupported CID version {version}")
        codec, pos = decode_varint(data, pos)
        code, pos = decode_varint(data, pos)
        length, pos = decode_varint(data, pos)
        if code != SHA2_256 or length != _DIGEST_LEN:
            raise InvalidInput(f"unsupported multihash 0x{code:x}/{length}: only sha2-256")
        if codec not in (RAW, DAG_PB):
            raise InvalidInput(f"unsupported codec 0x{codec:x}: only raw and dag-pb")
        end = pos + _DIGEST_LEN
        if end > len(data):
            raise InvalidInput("truncated CID")
        return cls(1, codec, bytes(data[pos:end])), end

    @classmethod
    def _from_multihash(cls, version: int, codec: int, multihash: bytes) -> CID:
        if len(multihash) != 2 + _DIGEST_LEN or multihash[:2] != bytes((SHA2_256, _DIGEST_LEN)):
            raise InvalidInput("unsupported multihash: only sha2-256")
        return cls(version, codec, multihash[2:])


def block_key(cid: CID) -> str:
    """Storage key of a block: base32 of its multihash, so CIDv0 and CIDv1 share one block."""
    return base64.b32encode(cid.multihash).decode("ascii").rstrip("=")


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58_ALPHABET[rem] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _B58_ALPHABET.find(char)
        if index < 0:
            raise InvalidInput(f"not a base58 CID: {text!r}")
        number = number * 58 + index
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + number.to_bytes((number.bit_length() + 7) // 8, "big")
