"""RFC 6962 §2.1 written as its recursive definitions, slow and literal, to check the fast tree.

Hashing is done here with hashlib directly so a mistake in the module under test cannot hide in
a shared helper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

# The eight inputs Certificate Transparency's reference tests use.
CT_LEAVES: tuple[bytes, ...] = (
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(data: Sequence[bytes]) -> bytes:
    """MTH(D[n])."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = _split(len(data))
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def path(m: int, data: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(data) == 1:
        return []
    k = _split(len(data))
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def subproof(m: int, data: Sequence[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    if m == len(data):
        return [] if whole else [mth(data)]
    k = _split(len(data))
    if m <= k:
        return [*subproof(m, data[:k], whole), mth(data[k:])]
    return [*subproof(m - k, data[k:], False), mth(data[:k])]


def proof(m: int, data: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]); empty for m == 0 and m == n, where roots alone decide."""
    if m in (0, len(data)):
        return []
    return subproof(m, data, True)


def path_shape(m: int, n: int) -> tuple[str, ...]:
    """Which side each PATH(m, D[n]) element sits on, bottom-up: all a verifier's hashing uses."""
    if n == 1:
        return ()
    k = _split(n)
    if m < k:
        return (*path_shape(m, k), "right")
    return (*path_shape(m - k, n - k), "left")


def proof_shape(m: int, n: int) -> tuple[str, ...]:
    """Like path_shape for PROOF(m, D[n]); "old" marks a proof that starts with an old subtree."""
    if m in (0, n):
        return ()
    return _subproof_shape(m, n, True)


def _subproof_shape(m: int, n: int, whole: bool) -> tuple[str, ...]:
    if m == n:
        return () if whole else ("old",)
    k = _split(n)
    if m <= k:
        return (*_subproof_shape(m, k, whole), "right")
    return (*_subproof_shape(m - k, n - k, False), "left")
