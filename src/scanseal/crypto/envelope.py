"""The sealed envelope: streaming AES-256-GCM under a header that names its recipients.

The normative spec is docs/FORMAT.md; this module is its reference implementation. In short:

* a random 32-byte *file key* is wrapped once per recipient into a stanza;
* the header (magic, version, segment size, salt, nonce prefix, stanzas) is authenticated by an
  HMAC-SHA-256 under ``HKDF(file key, salt, "scanseal/v1 header")``, so a changed, dropped,
  reordered or swapped stanza fails before a byte of payload is decrypted;
* the payload is cut into fixed segments, each sealed with AES-256-GCM under
  ``HKDF(file key, salt, "scanseal/v1 payload")`` and the nonce
  ``prefix(7) ‖ counter(4, big-endian) ‖ last-flag(1)``, so reordered, dropped, duplicated,
  truncated, extended or spliced segments all fail.

Memory is bounded by two segments whatever the size of the file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from scanseal.crypto.stanzas import (
    FILE_KEY_SIZE,
    KEY_ID_SIZE,
    RecipientKey,
    Stanza,
    TransportKey,
)
from scanseal.errors import IntegrityError, InvalidInput, NotARecipient

MAGIC: Final = b"SCANSEAL"
VERSION: Final = 1
DEFAULT_SEGMENT_SIZE: Final = 64 * 1024
MIN_SEGMENT_SIZE: Final = 16
MAX_SEGMENT_SIZE: Final = 16 * 1024 * 1024
MAX_STANZAS: Final = 1024
SALT_SIZE: Final = 32
NONCE_PREFIX_SIZE: Final = 7
TAG_SIZE: Final = 16
MAC_SIZE: Final = 32
MAX_SEGMENTS: Final = 1 << 32

_FIXED: Final = struct.Struct(">8sBI32s7sH")  # magic, version, segment size, salt, prefix, count
_STANZA_BODY_LEN: Final = struct.Struct(">H")
_LAST: Final = b"\x01"
_NOT_LAST: Final = b"\x00"

PlaintextObserver = Callable[[bytes], None]


@dataclass(frozen=True)
class Header:
    """A parsed envelope header. ``encoded`` is its exact bytes, MAC included."""

    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    stanzas: tuple[Stanza, ...]
    mac: bytes
    encoded: bytes

    @property
    def authenticated_bytes(self) -> bytes:
        """Everything the header MAC covers: the encoding up to the MAC itself."""
        return self.encoded[:-MAC_SIZE]


def derive_key(file_key: bytes, salt: bytes, purpose: str) -> bytes:
    """A 32-byte subkey of the file key, one per purpose (``header``, ``payload``, ``metadata``)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=salt,
        info=b"scanseal/v1 " + purpose.encode("ascii"),
    ).derive(file_key)


def new_file_key() -> bytes:
    return os.urandom(FILE_KEY_SIZE)


# --- header -------------------------------------------------------------------------------------


def _encode_stanza(stanza: Stanza) -> bytes:
    kind = stanza.kind.encode("ascii")
    if not 0 < len(kind) < 256 or len(stanza.key_id) != KEY_ID_SIZE or len(stanza.body) > 0xFFFF:
        raise InvalidInput("stanza does not fit the envelope format")
    return (
        bytes([len(kind)]) + kind + stanza.key_id + _STANZA_BODY_LEN.pack(len(stanza.body))
    ) + stanza.body


def build_header(
    file_key: bytes,
    stanzas: Sequence[Stanza],
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    salt: bytes | None = None,
    nonce_prefix: bytes | None = None,
) -> Header:
    """Encode and authenticate a header. Salt and prefix are random unless given (test vectors)."""
    _check_segment_size(segment_size)
    if not 1 <= len(stanzas) <= MAX_STANZAS:
        raise InvalidInput(f"an envelope needs between 1 and {MAX_STANZAS} recipients")
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    prefix = os.urandom(NONCE_PREFIX_SIZE) if nonce_prefix is None else nonce_prefix
    if len(salt) != SALT_SIZE or len(prefix) != NONCE_PREFIX_SIZE:
        raise InvalidInput("salt or nonce prefix has the wrong length")
    body = _FIXED.pack(MAGIC, VERSION, segment_size, salt, prefix, len(stanzas))
    body += b"".join(_encode_stanza(s) for s in stanzas)
    mac = hmac.digest(derive_key(file_key, salt, "header"), body, "sha256")
    return Header(segment_size, salt, prefix, tuple(stanzas), mac, body + mac)


def _check_segment_size(size: int) -> None:
    if not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE:
        raise InvalidInput(
            f"segment size {size} outside [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}] bytes"
        )


class _Reader:
    """Exact reads with a running count, so parse errors can say where the envelope broke."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.consumed = bytearray()

    def take(self, n: int, what: str) -> bytes:
        data = _read_exactly(self._src, n)
        if len(data) != n:
            raise IntegrityError(f"envelope truncated in the header ({what})")
        self.consumed += data
        return data


def read_header(src: BinaryIO) -> Header:
    """Parse a header without checking its MAC (that needs the file key: see :func:`unlock`)."""
    reader = _Reader(src)
    fixed = reader.take(_FIXED.size, "fixed fields")
    magic, version, segment_size, salt, prefix, count = _FIXED.unpack(fixed)
    if magic != MAGIC:
        raise IntegrityError("not a ScanSeal envelope (bad magic)")
    if version != VERSION:
        raise IntegrityError(f"unsupported envelope version {version}")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise IntegrityError(f"envelope header has an invalid segment size {segment_size}")
    if not 1 <= count <= MAX_STANZAS:
        raise IntegrityError(f"envelope header has an invalid stanza count {count}")
    stanzas = tuple(_read_stanza(reader, i) for i in range(count))
    mac = reader.take(MAC_SIZE, "MAC")
    return Header(segment_size, salt, prefix, stanzas, mac, bytes(reader.consumed))


def _read_stanza(reader: _Reader, index: int) -> Stanza:
    what = f"stanza {index}"
    kind_len = reader.take(1, what)[0]
    if kind_len == 0:
        raise IntegrityError(f"envelope {what} has an empty kind")
    raw_kind = reader.take(kind_len, what)
    if not all(0x21 <= b <= 0x7E for b in raw_kind):
        raise IntegrityError(f"envelope {what} has a non-ASCII kind")
    key_id = reader.take(KEY_ID_SIZE, what)
    (body_len,) = _STANZA_BODY_LEN.unpack(reader.take(2, what))
    return Stanza(raw_kind.decode("ascii"), key_id, reader.take(body_len, what))


def unlock(header: Header, identities: Iterable[TransportKey]) -> bytes:
    """Find a stanza for one of ``identities``, unwrap the file key and check the header MAC.

    Raises NotARecipient when no stanza names any of the keys, IntegrityError when one does but
    the stanza or the header was changed.
    """
    identities = list(identities)
    keys = {(k.kind, k.key_id): k for k in identities}
    for stanza in header.stanzas:
        key = keys.get((stanza.kind, stanza.key_id))
        if key is None:
            continue
        file_key = key.unwrap(stanza)
        expected = hmac.digest(
            derive_key(file_key, header.salt, "header"), header.authenticated_bytes, "sha256"
        )
        if not hmac.compare_digest(expected, header.mac):
            raise IntegrityError("envelope header failed authentication (changed after sealing)")
        return file_key
    _reject_altered_stanza(header.stanzas, identities)
    raise NotARecipient(_not_a_recipient_reason(header.stanzas))


def _reject_altered_stanza(stanzas: Sequence[Stanza], identities: Sequence[TransportKey]) -> None:
    """Tell an altered stanza from a foreign one before answering "not a recipient".

    A stanza whose kind or key id was changed no longer names our key, yet its body still
    decrypts under it (HPKE and OAEP authenticate the wrapped key). Only reached on the failure
    path, so the trial decryptions cost nothing when the envelope is fine.
    """
    for index, stanza in enumerate(stanzas):
        for key in identities:
            probe = Stanza(key.kind, key.key_id, stanza.body)
            try:
                key.unwrap(probe)
            except IntegrityError:
                continue
            raise IntegrityError(f"envelope header changed: stanza {index} was altered")


def _not_a_recipient_reason(stanzas: Sequence[Stanza]) -> str:
    named = ", ".join(f"{s.kind} {s.key_id.hex()[:12]}" for s in stanzas[:4])
    more = f" and {len(stanzas) - 4} more" if len(stanzas) > 4 else ""
    return f"not a recipient: the envelope is sealed for {named}{more}, none of them your keys"


# --- payload ------------------------------------------------------------------------------------


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= MAX_SEGMENTS:
        raise InvalidInput("payload too long for one envelope")
    return prefix + counter.to_bytes(4, "big") + (_LAST if last else _NOT_LAST)


def _read_exactly(src: BinaryIO, n: int) -> bytes:
    """Read ``n`` bytes unless the stream ends first (pipes may return short reads)."""
    data = src.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    missing = n - len(data)
    while missing:
        more = src.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def _segments(src: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(chunk, is_last)`` with one chunk of look-ahead; empty input is one empty chunk."""
    current = _read_exactly(src, size)
    while True:
        following = _read_exactly(src, size) if len(current) == size else b""
        yield current, not following
        if not following:
            return
        current = following


def encrypt_payload(
    src: BinaryIO,
    dst: BinaryIO,
    file_key: bytes,
    header: Header,
    on_plaintext: PlaintextObserver | None = None,
) -> int:
    """Seal ``src`` segment by segment into ``dst``; returns the plaintext length."""
    aead = AESGCM(derive_key(file_key, header.salt, "payload"))
    total = 0
    for counter, (chunk, last) in enumerate(_segments(src, header.segment_size)):
        if on_plaintext is not None:
            on_plaintext(chunk)
        dst.write(aead.encrypt(_nonce(header.nonce_prefix, counter, last), chunk, None))
        total += len(chunk)
    return total


def decrypt_payload(
    src: BinaryIO,
    dst: BinaryIO,
    file_key: bytes,
    header: Header,
    on_plaintext: PlaintextObserver | None = None,
) -> int:
    """Open the payload; every segment is authenticated before any of it is written."""
    aead = AESGCM(derive_key(file_key, header.salt, "payload"))
    total = 0
    for counter, (chunk, last) in enumerate(_segments(src, header.segment_size + TAG_SIZE)):
        if len(chunk) < TAG_SIZE:
            raise IntegrityError(f"envelope truncated in segment {counter}")
        try:
            plain = aead.decrypt(_nonce(header.nonce_prefix, counter, last), chunk, None)
        except InvalidTag:
            raise IntegrityError(
                f"envelope segment {counter} failed authentication "
                "(changed, reordered, truncated or extended)"
            ) from None
        if last and not plain and counter > 0:
            raise IntegrityError("envelope ends with an empty segment")
        if on_plaintext is not None:
            on_plaintext(plain)
        dst.write(plain)
        total += len(plain)
    return total


# --- whole envelopes ----------------------------------------------------------------------------


def seal(
    src: BinaryIO,
    dst: BinaryIO,
    recipients: Sequence[RecipientKey],
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    on_plaintext: PlaintextObserver | None = None,
) -> tuple[Header, bytes]:
    """Seal ``src`` for ``recipients`` into ``dst``; returns the header and the file key.

    The caller keeps the file key only as long as it needs it (to encrypt the manifest's
    metadata, or to re-wrap for a new recipient) and never stores it.
    """
    if not recipients:
        raise InvalidInput("an envelope needs at least one recipient")
    file_key = new_file_key()
    header = build_header(
        file_key, [r.wrap(file_key) for r in recipients], segment_size=segment_size
    )
    dst.write(header.encoded)
    encrypt_payload(src, dst, file_key, header, on_plaintext)
    return header, file_key


def open_envelope(
    src: BinaryIO,
    dst: BinaryIO,
    identities: Iterable[TransportKey],
    *,
    on_plaintext: PlaintextObserver | None = None,
) -> tuple[Header, bytes]:
    """Open an envelope from ``src`` into ``dst``; returns the header and the file key.

    ``dst`` receives only authenticated segments, but a later segment may still fail: callers
    that write files must write to a temporary file and discard it on error (see
    ``scanseal.transfer``).
    """
    header = read_header(src)
    file_key = unlock(header, identities)
    decrypt_payload(src, dst, file_key, header, on_plaintext)
    return header, file_key


def rewrap(header: Header, file_key: bytes, stanzas: Sequence[Stanza]) -> Header:
    """A new header for the same payload with a different recipient list (grant or revoke).

    The payload key depends only on the file key and salt, so the ciphertext segments stay
    valid; only the header is replaced.
    """
    return build_header(
        file_key,
        stanzas,
        segment_size=header.segment_size,
        salt=header.salt,
        nonce_prefix=header.nonce_prefix,
    )


def envelope_digest(path: os.PathLike[str] | str, chunk_size: int = 1 << 20) -> bytes:
    """SHA-256 of an envelope file, the value a manifest binds."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.digest()
