"""EIP-55 checksummed addresses, remembered.

A gateway checksums the same few hundred addresses (its members) on every request, and each
checksum is a Keccak-256 in pure Python glue that costs tens of microseconds; under load that
added up to several per cent of the gateway's CPU. The answers depend only on the input, so the
recent ones are kept.
"""

from __future__ import annotations

import functools
from typing import Final

from eth_utils.address import is_checksum_address, to_checksum_address

_KEPT: Final = 65_536


@functools.lru_cache(maxsize=_KEPT)
def checksum(address: str | bytes) -> str:
    """``address`` (hex text or 20 bytes) in EIP-55 form; ValueError when it is not one."""
    return str(to_checksum_address(address))


@functools.lru_cache(maxsize=_KEPT)
def is_checksummed(address: str) -> bool:
    """True when ``address`` is written in its EIP-55 form."""
    return bool(is_checksum_address(address))
