"""EIP-712 typed-data hashing for the flat struct types ScanSeal signs.

An EIP-712 signature is an ordinary secp256k1 signature over one 32-byte digest,
``keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))``, where ``hashStruct`` is the
Keccak-256 of the struct's type hash followed by one 32-byte word per field. This module computes
that digest for structs whose fields are ``string``, ``address``, ``bytes32`` or ``uint64`` /
``uint256`` — all that ScanSeal's requests need; nested structs and arrays are not supported.

It is the one EIP-712 encoder: the client signs the digest it returns and the gateway recovers
the signer from the same digest (``scanseal.crypto.signing``). It is written out rather than
taken from eth_account's ``encode_typed_data`` because the gateway computes one digest per request
and the general encoder is about a hundred times slower; the tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from eth_hash.auto import keccak

Encoder = Callable[[object], bytes]


def _string(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"EIP-712 string field holds {type(value).__name__}")
    return keccak(value.encode("utf-8"))


def _address(value: object) -> bytes:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = b""
        if len(raw) == 20:  # shorter when fromhex skipped whitespace
            return bytes(12) + raw
    raise ValueError(f"EIP-712 address field holds {value!r}")


def _bytes32(value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"EIP-712 bytes32 field holds {value!r}")
    return value


def _unsigned(bits: int) -> Encoder:
    def encode(value: object) -> bytes:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
            raise ValueError(f"EIP-712 uint{bits} field holds {value!r}")
        return value.to_bytes(32, "big")

    return encode


_ENCODERS: Final[Mapping[str, Encoder]] = {
    "string": _string,
    "address": _address,
    "bytes32": _bytes32,
    "uint64": _unsigned(64),
    "uint256": _unsigned(256),
}


@dataclass(frozen=True)
class StructType:
    """One flat EIP-712 struct type: its name and its ``(field name, type)`` pairs, in order."""

    name: str
    fields: tuple[tuple[str, str], ...]
    type_hash: bytes = field(init=False, repr=False, compare=False)
    _encoders: tuple[tuple[str, Encoder], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [kind for _, kind in self.fields if kind not in _ENCODERS]
        if unknown:
            raise ValueError(f"EIP-712 type {self.name} uses unsupported field types {unknown}")
        encoded = ",".join(f"{kind} {name}" for name, kind in self.fields)
        type_hash = keccak(f"{self.name}({encoded})".encode())
        object.__setattr__(self, "type_hash", type_hash)
        encoders = tuple((name, _ENCODERS[kind]) for name, kind in self.fields)
        object.__setattr__(self, "_encoders", encoders)

    def hash_struct(self, values: Mapping[str, object]) -> bytes:
        """``hashStruct(values)``; KeyError for a missing field, ValueError for one that does not
        fit its type (a short nonce, a time past 64 bits): a caller's mistake, never signed."""
        words = b"".join(encode(values[name]) for name, encode in self._encoders)
        return keccak(self.type_hash + words)


EIP712_DOMAIN: Final = StructType(
    "EIP712Domain",
    (("name", "string"), ("version", "string"), ("chainId", "uint256"),
     ("verifyingContract", "address")),
)  # fmt: skip
"""The domain type with the four fields ScanSeal binds (no ``salt``)."""


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """``hashStruct(EIP712Domain)`` for these four fields."""
    return EIP712_DOMAIN.hash_struct(
        {"name": name, "version": version, "chainId": chain_id,
         "verifyingContract": verifying_contract}
    )  # fmt: skip


def typed_digest(separator: bytes, struct_hash: bytes) -> bytes:
    """The 32 bytes a wallet signs: ``keccak256(0x19 0x01 ‖ separator ‖ struct_hash)``."""
    return keccak(b"\x19\x01" + separator + struct_hash)


__all__ = ["EIP712_DOMAIN", "StructType", "domain_separator", "typed_digest"]
