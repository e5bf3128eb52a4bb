"""The "verify a file" page: does a file on this desk match a record sealed to me?

The same two hashes ``scanseal verify`` and the ledger hold: H1, the SHA-256 of the file's
bytes (``integrity.sha256_file``), and the pixel digest of its decoded pixels
(``integrity.pixel_digest``). Both equal: the very file that was sealed. The pixel digest alone:
the same image re-encoded (another transfer syntax, a re-saved PNG), its pixels unchanged. Neither:
no record this identity can see holds this image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scanseal.console._views import Console
from scanseal.errors import ScanSealError
from scanseal.integrity import pixel_digest, sha256_file


@dataclass(frozen=True)
class Match:
    record: str
    sender: str
    sealed: str
    same_bytes: bool
    same_pixels: bool


@dataclass(frozen=True)
class FileCheck:
    """The uploaded file's hashes and the records they match (``error``: it was no image)."""

    name: str
    h1: str
    pixel_digest: str
    matches: list[Match]
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return f"not an image ScanSeal reads: {self.error}"
        if any(m.same_bytes and m.same_pixels for m in self.matches):
            return (
                "matches a sealed record: the same bytes and the same pixels (H1 and pixel digest)"
            )
        if self.matches:
            return (
                "the same pixels as a sealed record, in other bytes (pixel digest only: re-encoded)"
            )
        return "matches no record sealed to you: neither H1 nor the pixel digest"


def check_file(console: Console, name: str, path: Path) -> FileCheck:
    """Hash ``path`` and compare it with every record in the console's inbox."""
    try:
        h1, pixels = sha256_file(path), pixel_digest(path)
    except ScanSealError as error:
        return FileCheck(name, "", "", [], error.reason)
    matches = []
    for summary in console.inbox():
        manifest = console.known(summary.record)
        same_bytes, same_pixels = manifest.chain.h1 == h1, manifest.pixel_digest == pixels
        if same_bytes or same_pixels:
            matches.append(
                Match(summary.record, summary.sender, summary.sealed, same_bytes, same_pixels)
            )
    return FileCheck(name, h1.hex(), pixels.hex(), matches)
