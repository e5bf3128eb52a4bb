"""Signatures with an Ethereum (secp256k1) key: one decoder and one recovery for all of them.

ScanSeal signs two kinds of things. Manifests, identity cards and grants carry an EIP-191
``personal_sign`` signature over their exact bytes (``sign_message``, ``verify_signature``), the
same thing a wallet such as MetaMask produces, so the signer is the Ethereum address the ledger
contract sees as ``msg.sender``. Gateway requests carry an EIP-712 signature over a typed-data
digest (``scanseal.crypto.typed_data``; ``scanseal.protocol.signed`` builds it). Both are a
secp256k1 signature over a 32-byte digest, so both are made by ``sign_digest`` and checked by
``decode_signature`` then ``recover_address``.

A signature travels as ``0x`` followed by 130 hex digits: ``r ‖ s ‖ v``. Only the canonical form
is accepted: ``0 < r < n``, ``s`` in the lower half of the curve order (EIP-2) and ``v`` in
{27, 28}. Otherwise one signature could be rewritten into a second valid one for the same digest,
and anything that hashes a signature (a card hash, a manifest CID, a used-request log) would then
have two values for one signed object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Protocol

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak
from eth_utils.address import is_checksum_address, to_checksum_address

from scanseal._address import checksum
from scanseal.errors import IntegrityError, InvalidInput

SIGNATURE_SIZE: Final = 65

_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SIGNATURE_RE: Final = re.compile(r"0x[0-9a-fA-F]{130}")  # bytes.fromhex alone skips whitespace
_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Refusals:
    """The IntegrityError reasons for each way a signature can be refused.

    The checks are the same for every signature; the words are the caller's, since a gateway
    names its header where a manifest check names the signature. ``recovery_byte`` may contain
    ``{v}``, replaced by the byte found.
    """

    malformed: str
    out_of_range: str
    recovery_byte: str
    no_key: str


SIGNATURE_REFUSALS: Final = Refusals(
    malformed=f"malformed signature: expected 0x and {2 * SIGNATURE_SIZE} hex digits",
    out_of_range="malformed signature: r or s out of range (high s is not accepted)",
    recovery_byte="malformed signature: recovery byte v={v}, expected 27 or 28",
    no_key="signature does not recover to any key",
)
"""The reasons of EIP-191 signatures (manifests, cards, grants)."""


def decode_signature(signature: object, refusals: Refusals = SIGNATURE_REFUSALS) -> bytes:
    """The 65 bytes of a ``0x`` + 130 hex digit signature in canonical form, else IntegrityError.

    To the caller a mangled signature is the same event as a forged one.
    """
    if not isinstance(signature, str) or not _SIGNATURE_RE.fullmatch(signature):
        raise IntegrityError(refusals.malformed)
    raw = bytes.fromhex(signature[2:])
    r = int.from_bytes(raw[0:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    if not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        raise IntegrityError(refusals.out_of_range)
    if raw[64] not in (27, 28):
        raise IntegrityError(refusals.recovery_byte.format(v=raw[64]))
    return raw


def recover_address(digest: bytes, raw: bytes, refusals: Refusals = SIGNATURE_REFUSALS) -> str:
    """The checksummed address whose key made the decoded signature ``raw`` over ``digest``."""
    try:
        key = PublicKey.from_signature_and_message(
            raw[:64] + bytes([raw[64] - 27]), digest, hasher=None
        )
    except Exception:  # no point on the curve for this r, or another unusable signature
        raise IntegrityError(refusals.no_key) from None
    return checksum(keccak(key.format(compressed=False)[1:])[-20:])


class Signer(Protocol):
    """What signs: a secp256k1 private key and its address (an :class:`EthereumKey`, or an
    eth-account ``LocalAccount``, which the ledger's transactions need)."""

    @property
    def key(self) -> bytes: ...

    @property
    def address(self) -> str: ...


class EthereumKey:
    """A secp256k1 private key and its checksummed address, signing through libsecp256k1.

    What an unlocked identity signs with: eth-account, which builds py_ecc's pairing tables
    when imported (most of a second), is needed only for ledger transactions, not to sign a
    manifest, a card, a grant or a request. ValueError for a key that is zero or not below
    the curve order."""

    __slots__ = ("_private", "address")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a secp256k1 private key is 32 bytes")
        self._private = PrivateKey(bytes(key))
        public = self._private.public_key.format(compressed=False)[1:]
        self.address: str = checksum(keccak(public)[-20:])

    @property
    def key(self) -> bytes:
        return bytes(self._private.secret)

    def __repr__(self) -> str:  # never the key
        return f"EthereumKey(address={self.address})"


def sign_digest(signer: Signer, digest: bytes) -> str:
    """Sign a 32-byte digest; returns ``0x`` + 65 bytes in hex, canonical.

    libsecp256k1 signs deterministically (RFC 6979) with a low ``s`` — the same bytes as
    eth-account's ``unsafe_sign_hash`` — so signing the same digest twice gives the same
    signature, which keeps signed objects reproducible.
    """
    if len(digest) != 32:
        raise ValueError("a signed digest is 32 bytes")
    private = signer._private if isinstance(signer, EthereumKey) else PrivateKey(bytes(signer.key))
    raw = private.sign_recoverable(bytes(digest), hasher=None)
    signature = "0x" + (raw[:64] + bytes([raw[64] + 27])).hex()
    decode_signature(signature)
    return signature


def personal_digest(message: bytes) -> bytes:
    """The EIP-191 version ``0x45`` (``personal_sign``) digest of ``message``."""
    prefix = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode("ascii")
    return keccak(prefix + bytes(message))


def sign_message(signer: Signer, message: bytes) -> str:
    """Sign ``message`` with EIP-191 personal_sign; returns ``0x`` + 65 bytes in hex."""
    return sign_digest(signer, personal_digest(message))


def recover_signer(message: bytes, signature: str) -> str:
    """The checksummed address whose key made ``signature`` over ``message``.

    Any signature that is not 65 canonical bytes raises IntegrityError.
    """
    raw = decode_signature(signature)
    return recover_address(personal_digest(message), raw)


def verify_signature(message: bytes, signature: str, expected_address: str) -> None:
    """Raise IntegrityError unless ``signature`` over ``message`` is by ``expected_address``.

    The address may be in any case (the ledger and user input differ), but a mixed-case address
    whose EIP-55 checksum is wrong is a typo and raises InvalidInput rather than a mismatch.
    """
    expected = _checksummed(expected_address)
    signer = recover_signer(message, signature)
    if signer != expected:
        raise IntegrityError(f"signature is by {signer}, expected {expected}")


def _checksummed(address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise InvalidInput(f"not an Ethereum address: {address!r}")
    digits = address[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(address):
        raise InvalidInput(f"Ethereum address {address} has a wrong EIP-55 checksum (a typo?)")
    return str(to_checksum_address(address))


__all__ = [
    "SIGNATURE_REFUSALS",
    "SIGNATURE_SIZE",
    "EthereumKey",
    "Refusals",
    "Signer",
    "decode_signature",
    "personal_digest",
    "recover_address",
    "recover_signer",
    "sign_digest",
    "sign_message",
    "verify_signature",
]
