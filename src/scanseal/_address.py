"""EIP-55 checksummed addresses, spelled here and remembered.

A gateway checksums the same few hundred addresses (its members) on every request, and each
checksum is a Keccak-256 in pure Python glue that costs tens of microseconds; under load that
added up to several per cent of the gateway's CPU. The answers depend only on the input, so the
recent ones are kept. The spelling is EIP-55's own rule (a hex digit is upper case where the
Keccak-256 of the lower-case address has a nibble of 8 or more), written here rather than
imported from eth-utils, whose import costs a CLI command about a quarter of a second.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from eth_hash.auto import keccak

_KEPT: Final = 65_536
_HEX_ADDRESS: Final = re.compile(r"(?:0[xX])?([0-9a-fA-F]{40})")


@functools.lru_cache(maxsize=_KEPT)
def checksum(address: str | bytes) -> str:
    """``address`` (hex text, ``0x`` optional, or 20 bytes) in EIP-55 form; ValueError when it
    is not one."""
    if isinstance(address, bytes):
        if len(address) != 20:
            raise ValueError("an address is 20 bytes")
        digits = address.hex()
    else:
        found = _HEX_ADDRESS.fullmatch(address) if isinstance(address, str) else None
        if found is None:
            raise ValueError(f"not an address: {address!r}")
        digits = found.group(1).lower()
    mask = keccak(digits.encode("ascii")).hex()
    spelled = (d.upper() if int(m, 16) >= 8 else d for d, m in zip(digits, mask, strict=False))
    return "0x" + "".join(spelled)


@functools.lru_cache(maxsize=_KEPT)
def is_checksummed(address: str) -> bool:
    """True when ``address`` is written in its EIP-55 form (with its ``0x``)."""
    return isinstance(address, str) and is_address(address) and checksum(address) == address


def is_address(address: object) -> bool:
    """An address as eth-utils' ``is_address`` takes one: 20 bytes, or 40 hex digits in any
    case, ``0x`` optional (the checksum is :func:`is_checksummed`'s to check)."""
    if isinstance(address, bytes):
        return len(address) == 20
    return isinstance(address, str) and _HEX_ADDRESS.fullmatch(address) is not None
