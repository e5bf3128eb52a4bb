"""The CIDs ScanSeal emits and accepts, on top of the ``multiformats`` package.

``multiformats`` does the text encodings (multibase forms, CID parsing); this module
narrows them to what ScanSeal produces and can check: CID versions 0 and 1, the ``raw`` (0x55)
and ``dag-pb`` (0x70) codecs, and sha2-256 multihashes. Any other CID is refused with
:class:`~scanseal.errors.InvalidInput` rather than trusted without a hash check.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass

from multiformats import CID as _MultiformatsCID  # noqa: N811 - kept apart from ours

from scanseal.errors import IntegrityError, InvalidInput

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32


# Varints stay local: they sit on the hot path of dag-pb encoding and decoding (thousands of
# calls per object), and multiformats' varint validates its argument types on every call, which
# measured 40 µs a call and halved verified reads. LEB128 is eight lines.


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as used by multiformats, protobuf and CAR."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return ``(value, next position)``; refuse truncated or over-long varints."""
    value = shift = 0
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
        """The CID's text: CIDv1 in base32 (encoded here: multiformats checks its arguments by
        raising and catching TypeErrors, and each such exception kept the caller's frames, an
        upload's body or a fetch's bundle among them, alive until the collector's next pass),
        CIDv0 in base58btc (through multiformats)."""
        if self.version == 1:  # multibase "b": RFC 4648 base32, lower case, no padding
            return "b" + base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")
        base = "base58btc"
        codec = "dag-pb" if self.codec == DAG_PB else "raw"
        return str(_MultiformatsCID(base, self.version, codec, ("sha2-256", self.digest)))

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
        """Parse a CID in any multibase text form (``b…`` base32, ``Qm…`` CIDv0, …).

        Parsing through multiformats costs about a quarter of a millisecond (its arguments are
        type-checked at run time) and a gateway parses the same few CIDs on every fetch, so the
        answers for recent texts are kept; a CID is immutable, and refusals are never kept.
        """
        return _parse_text(text.strip())

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


_MAX_TEXT = 512
"""Longest CID text parsed: the CIDs ScanSeal accepts are 46 (v0) to 59 (v1, base32) characters;
a cap keeps a hostile route argument from costing multibase decoding time."""


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> CID:
    if len(text) > _MAX_TEXT:
        raise InvalidInput(f"not a CID: {len(text)} characters is too long")
    quick = _base32_cid(text)  # the text ScanSeal emits, without multiformats (see __str__)
    if quick is not None:
        return quick
    try:
        parsed = bytes(_MultiformatsCID.decode(text))
    except Exception as error:  # multiformats raises IndexError too ("b", "z")
        raise InvalidInput(f"not a CID: {text!r} ({error or type(error).__name__})") from None
    cid, end = CID.decode(parsed, 0)
    if end != len(parsed):
        raise InvalidInput(f"not a CID: {text!r} (trailing bytes)")
    return cid


def _base32_cid(text: str) -> CID | None:
    """A CIDv1 in its canonical base32 text, or None for anything else (left to multiformats,
    which parses or refuses it as it always did)."""
    if text[:1] != "b" or not text[1:].isalnum() or not text[1:].islower():
        return None
    body = text[1:].upper()
    try:
        cid, _end = CID.decode(base64.b32decode(body + "=" * (-len(body) % 8)), 0)
    except (ValueError, InvalidInput):  # binascii.Error is a ValueError
        return None
    return cid if cid.version == 1 and str(cid) == text else None
