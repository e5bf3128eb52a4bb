"""Uploader signatures with an Ethereum (secp256k1) key.

A ScanSeal signature is an EIP-191 ``personal_sign`` signature over the exact message bytes, the
same thing a wallet such as MetaMask produces, so the signer is the Ethereum address that the
ledger contract sees as ``msg.sender``. Signatures travel as ``0x`` followed by 130 hex digits:
``r ‖ s ‖ v`` with ``v`` in {27, 28}.

Verification accepts only the canonical form: ``s`` in the lower half of the curve order (EIP-2)
and ``v`` in {27, 28}. Otherwise one signature could be rewritten into a second valid one for the
same message, and anything that hashes a signature (a card hash, a manifest CID) would then have
two values for one signed object.
"""

from __future__ import annotations

import re
from typing import Final

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_checksum_address, to_checksum_address

from scanseal.errors import IntegrityError, InvalidInput

SIGNATURE_SIZE: Final = 65

_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SIGNATURE_RE: Final = re.compile(r"0x[0-9a-fA-F]{130}")
_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def sign_message(account: LocalAccount, message: bytes) -> str:
    """Sign ``message`` with EIP-191 personal_sign; returns ``0x`` + 65 bytes in hex.

    eth-account signs deterministically (RFC 6979) with a low ``s``, so signing the same bytes
    twice gives the same signature, which keeps signed objects reproducible.
    """
    signed = account.sign_message(encode_defunct(primitive=bytes(message)))
    raw = bytes(signed.signature)
    _require_canonical(raw)
    return "0x" + raw.hex()


def recover_signer(message: bytes, signature: str) -> str:
    """The checksummed address whose key made ``signature`` over ``message``.

    Any signature that is not 65 canonical bytes raises IntegrityError: to the caller a mangled
    signature is the same event as a forged one.
    """
    raw = _decode_signature(signature)
    _require_canonical(raw)
    try:
        address = Account.recover_message(encode_defunct(primitive=bytes(message)), signature=raw)
    except Exception:  # eth-keys raises several unrelated types for an unusable point
        raise IntegrityError("signature does not recover to any key") from None
    return str(address)


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


def _decode_signature(signature: str) -> bytes:
    if not isinstance(signature, str) or not _SIGNATURE_RE.fullmatch(signature):
        raise IntegrityError(
            f"malformed signature: expected 0x and {2 * SIGNATURE_SIZE} hex digits"
        )
    return bytes.fromhex(signature[2:])


def _require_canonical(raw: bytes) -> None:
    r = int.from_bytes(raw[0:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    if not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        raise IntegrityError("malformed signature: r or s out of range (high s is not accepted)")
    if raw[64] not in (27, 28):
        raise IntegrityError(f"malformed signature: recovery byte v={raw[64]}, expected 27 or 28")


__all__ = ["SIGNATURE_SIZE", "recover_signer", "sign_message", "verify_signature"]
