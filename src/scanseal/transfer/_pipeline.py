"""Stream wrappers that hash what passes through, so no pass over the data is repeated.

A writer thread was tried and measured slower (bench/seal.py): 64 KiB segments hand the GIL
back and forth thousands of times, which costs more than the overlap gains.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO


class HashingReader:
    """Reads from ``src`` and hashes every byte read (the envelope digest when opening)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


class HashingWriter:
    """Writes to ``dst`` and hashes every byte written (the envelope digest when sealing)."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._dst.write(data)
