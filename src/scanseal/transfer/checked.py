"""Opening a fetched record, checked: the one verified-decrypt path, without the ledger itself.

A client that fetched a record from a gateway holds the envelope, its signed manifest, maybe a
grant, and the hashes the gateway read from the ledger for it (:class:`LedgerHashes`);
:func:`open_checked` decrypts only once every one of them agrees. Nothing here talks to a
chain, so a ``scanseal fetch`` does not import web3 (``transfer.records``, which does, reuses
both names for the records it opens itself).

:func:`unlock_record` is the first half of opening, which describing a record needs too: the
manifest's signature, the grant (if any) and the file key unwrapped. A record described and
then opened (``fetch STUDY``) passes its :class:`Unlocked` to :func:`open_checked`, so the
signature is checked and the key unwrapped once per record, not twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scanseal.crypto import envelope
from scanseal.crypto.envelope import Header
from scanseal.crypto.identity import Identity
from scanseal.crypto.stanzas import TransportKey
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.transfer._output import plaintext_output
from scanseal.transfer.grants import Grant, check_same_payload
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


@dataclass(frozen=True, eq=False)
class Unlocked:
    """What :func:`unlock_record` proved of one record: ``manifest``'s signature held, the
    ``grant`` (if any) is the owner's and for this envelope's payload, and ``file_key`` was
    unwrapped from ``unwrapping`` (the envelope's ``header``, or the grant's)."""

    manifest: Manifest
    grant: Grant | None
    header: Header
    unwrapping: Header
    file_key: bytes

    def key_for(self, original: Header, header: Header) -> bytes:
        """The file key, for an envelope whose header is ``original`` unwrapped through
        ``header``: only if they are the very headers it was unwrapped from (compared byte for
        byte, MAC included); IntegrityError otherwise."""
        if self.header.encoded != original.encoded or self.unwrapping.encoded != header.encoded:
            raise IntegrityError("the envelope's header is not the one its key was unwrapped from")
        return self.file_key


def unlock_record(
    manifest: Manifest, header: Header, keys: Iterable[TransportKey], grant: Grant | None
) -> Unlocked:
    """Check ``manifest``'s signature and ``grant`` against its owner, then unwrap the file
    key from the envelope's ``header`` (or the grant's, once it is shown to describe the same
    payload) with one of ``keys``; IntegrityError or InvalidInput when any of it fails."""
    manifest.verify_signature()
    unwrapping = header
    if grant is not None:
        unwrapping = grant.verify(manifest.uploader.address)
        check_same_payload(header, unwrapping)
    file_key = envelope.unlock(unwrapping, keys)
    return Unlocked(manifest, grant, header, unwrapping, file_key)


def open_checked(
    envelope_path: Path | bytes,
    manifest: Manifest,
    identity: Identity,
    output: Path,
    hashes: LedgerHashes,
    *,
    grant: Grant | None = None,
    progress: Progress | None = None,
    unlocked: Unlocked | None = None,
) -> OpenedFile:
    """Decrypt ``envelope_path`` as a recipient or through ``grant``, checking every hash.

    The plaintext appears at ``output`` only after the envelope digest, the recipient list (or
    the grant's owner signature and payload parameters), H1–H3, the metadata and the ledger
    hashes all held; otherwise nothing is written. ``envelope_path`` may be the envelope's
    bytes (a fetched bundle holds them already). ``unlocked``, :func:`unlock_record`'s answer
    for this very manifest and grant, stands for the signature and grant checks and the key
    unwrapping; the envelope's header must then be the one it was unwrapped from.
    """
    if unlocked is None:
        manifest.verify_signature()
        granted = None if grant is None else grant.verify(manifest.uploader.address)
    elif unlocked.manifest is not manifest or unlocked.grant is not grant:
        raise InvalidInput("a record is opened with what was unlocked for that same record")
    else:
        granted = None if grant is None else unlocked.unwrapping
    hashes.check(manifest)
    with plaintext_output(output) as (dst, _):
        metadata = decrypt_checked(
            envelope_path, manifest, identity, dst, progress, granted,
            key_for=None if unlocked is None else unlocked.key_for,
        )  # fmt: skip
    return OpenedFile(output, manifest, metadata)
