"""Opening a fetched record, checked: the one verified-decrypt path, without the ledger itself.

A client that fetched a record from a gateway holds the envelope, its signed manifest, maybe a
grant, and the hashes the gateway read from the ledger for it (:class:`LedgerHashes`);
:func:`open_checked` decrypts only once every one of them agrees. Nothing here talks to a
chain, so a ``scanseal fetch`` does not import web3 (``transfer.records``, which does, reuses
both names for the records it opens itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scanseal.crypto.identity import Identity
from scanseal.errors import IntegrityError
from scanseal.transfer._output import plaintext_output
from scanseal.transfer.grants import Grant
from scanseal.transfer.local import OpenedFile, Progress, decrypt_checked
from scanseal.transfer.manifest import Manifest

if TYPE_CHECKING:
    from scanseal.ledger import Record


@dataclass(frozen=True)
class LedgerHashes:
    """The hashes a record holds on the ledger, which a manifest must repeat."""

    h1: bytes
    h3: bytes
    pixel_digest: bytes

    @classmethod
    def of(cls, record: Record) -> LedgerHashes:
        return cls(record.image_hash, record.h3, record.pixel_digest)

    def check(self, manifest: Manifest) -> None:
        for name, on_chain, claimed in (
            ("H1", self.h1, manifest.chain.h1),
            ("H3", self.h3, manifest.chain.h3),
            ("pixel digest", self.pixel_digest, manifest.pixel_digest),
        ):
            if on_chain != claimed:
                raise IntegrityError(f"manifest {name} differs from the ledger record")


def open_checked(
    envelope_path: Path | bytes,
    manifest: Manifest,
    identity: Identity,
    output: Path,
    hashes: LedgerHashes,
    *,
    grant: Grant | None = None,
    progress: Progress | None = None,
) -> OpenedFile:
    """Decrypt ``envelope_path`` as a recipient or through ``grant``, checking every hash.

    The plaintext appears at ``output`` only after the envelope digest, the recipient list (or
    the grant's owner signature and payload parameters), H1–H3, the metadata and the ledger
    hashes all held; otherwise nothing is written. ``envelope_path`` may be the envelope's
    bytes (a fetched bundle holds them already).
    """
    manifest.verify_signature()
    hashes.check(manifest)
    granted = None if grant is None else grant.verify(manifest.uploader.address)
    with plaintext_output(output) as (dst, _):
        metadata = decrypt_checked(envelope_path, manifest, identity, dst, progress, granted)
    return OpenedFile(output, manifest, metadata)
