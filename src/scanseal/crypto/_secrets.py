"""The plaintext a keystore file encrypts: the Ethereum key, the transport keys of the current
card and, once the identity was rotated, the retired transport keys of its earlier cards.

A rotation (``scanseal keys rotate``) gives an identity new transport keys and a new card but
keeps the old keys, because envelopes sealed to an earlier card must still open. Each earlier
card is one entry of ``retired``, newest first: its card hash (hex) and its keys, encoded as the
current ones are (docs/KEYS.md §3). ``retired`` is written only when it is not empty, so the
file of an identity that was never rotated is what it always was (the test vector).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from scanseal._json import JsonObject, Reader, b64encode, canonical_json, parse_object
from scanseal.crypto.signing import EthereumKey, Signer
from scanseal.crypto.stanzas import RECIPIENT_KINDS, TransportKey

ETHEREUM_KEY_SIZE: Final = 32
MAX_RETIRED: Final = 64
"""Rotations a keystore remembers: far more than any real key's life, a bound on the file."""
_CARD_HASH_HEX: Final = 64


@dataclass(frozen=True)
class RetiredKeys:
    """The transport keys of a card that a rotation replaced, kept to open old envelopes."""

    card_hash: bytes
    keys: Mapping[str, TransportKey]


@dataclass(frozen=True)
class Secrets:
    """What a keystore file holds encrypted, decoded (not yet checked against its card)."""

    account: EthereumKey
    transport: Mapping[str, TransportKey]
    retired: tuple[RetiredKeys, ...]


def encode(
    account: Signer, transport: Mapping[str, TransportKey], retired: Sequence[RetiredKeys]
) -> bytes:
    """Canonical JSON of the secrets; ``retired`` only when there is any."""
    secrets: JsonObject = {
        "ethereum": b64encode(bytes(account.key)),
        "transport": _encode_keys(transport),
    }
    if retired:
        secrets["retired"] = [
            {"card_sha256": entry.card_hash.hex(), "transport": _encode_keys(entry.keys)}
            for entry in retired
        ]
    return canonical_json(secrets)


def decode(secrets: bytes, where: str) -> Secrets:
    """Parse decrypted secrets strictly, naming the field of any problem (InvalidInput)."""
    what = f"{where}: secrets"
    obj = parse_object(secrets, what)
    reader = Reader(obj, what)
    reader.only("ethereum", "transport", "retired")
    ethereum = reader.b64("ethereum")
    if len(ethereum) != ETHEREUM_KEY_SIZE:
        reader.fail("ethereum", f"must be {ETHEREUM_KEY_SIZE} bytes")
    try:
        account = EthereumKey(ethereum)
    except ValueError:  # zero or not below the curve order
        reader.fail("ethereum", "is not a valid secp256k1 private key")
    retired = _decode_retired(reader, what, obj["retired"]) if "retired" in obj else ()
    return Secrets(account, _decode_keys(reader.child("transport")), retired)


def _encode_keys(keys: Mapping[str, TransportKey]) -> JsonObject:
    return {kind: b64encode(keys[kind].private_bytes()) for kind in RECIPIENT_KINDS}


def _decode_keys(reader: Reader) -> dict[str, TransportKey]:
    reader.only(*RECIPIENT_KINDS)
    return {
        kind: TransportKey.from_private_bytes(kind, reader.b64(kind)) for kind in RECIPIENT_KINDS
    }


def _decode_retired(reader: Reader, what: str, entries: object) -> tuple[RetiredKeys, ...]:
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_RETIRED:
        reader.fail("retired", f"must be a list of 1 to {MAX_RETIRED} retired key sets")
    retired = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            reader.fail(f"retired.{index}", "must be a JSON object")
        item = Reader(entry, what, f"retired.{index}.")
        item.only("card_sha256", "transport")
        card_hash = item.text("card_sha256")
        if len(card_hash) != _CARD_HASH_HEX or card_hash.strip("0123456789abcdef"):
            item.fail("card_sha256", "must be 64 lowercase hex digits")
        retired.append(RetiredKeys(bytes.fromhex(card_hash), _decode_keys(item.child("transport"))))
    return tuple(retired)


__all__ = ["ETHEREUM_KEY_SIZE", "MAX_RETIRED", "RetiredKeys", "Secrets", "decode", "encode"]
