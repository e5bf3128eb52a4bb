"""The workflows on the ledger: register, grant, revoke, open, verify and audit a record.

A *record* is one sealed image registered on the ledger under its manifest CID. These functions
talk to a :class:`~scanseal.ledger.Ledger` and a :class:`~scanseal.storage.BlobStore` directly,
with the caller's own keys: they are what a department gateway runs on behalf of its clinicians
(``scanseal.service``), and what a site with its own node can run without a gateway.

Opening checks every hash three ways: the envelope against the signed manifest, the decrypted
bytes against the manifest's hash chain, and the manifest's hashes against the ledger record.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scanseal.crypto import envelope
from scanseal.crypto.envelope import Header
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import AccessDenied, IntegrityError
from scanseal.ingest import ImageMetadata
from scanseal.integrity import verify_chain
from scanseal.ledger import AccessType, AuditEntry, Ledger, Receipt, Record
from scanseal.storage import CID, BlobStore
from scanseal.transfer._pipeline import HashingReader, HashingWriter
from scanseal.transfer.grants import Grant, check_same_payload, make_grant
from scanseal.transfer.local import (
    OpenedFile,
    Progress,
    SealedFile,
    VerifyReport,
    _check_recipients,
    _parse_metadata,
    _plaintext_output,
    seal_file,
    verify_sealed,
)
from scanseal.transfer.manifest import Manifest, decrypt_metadata
from scanseal.transfer.stored import fetch_sealed, publish_manifest
from scanseal.transfer.upload import with_self


@dataclass(frozen=True)
class SealReceipt:
    """What registering an image gives back: the manifest CID names the record everywhere."""

    manifest_cid: str
    envelope_cid: str
    sealed: SealedFile
    ledger: Receipt


@dataclass(frozen=True)
class GrantReceipt:
    grant: Grant
    grant_cid: str
    ledger: Receipt


def cid_bytes(cid: str) -> bytes:
    """The binary form of a CID as text, which is what the ledger keys records by."""
    return CID.parse(cid).to_bytes()


# --- register, grant, revoke --------------------------------------------------------------------


def register(
    source: Path,
    recipients: Sequence[IdentityCard],
    uploader: Identity,
    output: Path,
    *,
    store: BlobStore,
    ledger: Ledger,
    progress: Progress | None = None,
) -> SealReceipt:
    """Seal ``source`` for ``recipients`` (and the uploader), store it, and record it on chain.

    The uploader must be an authorized uploader on the ledger; each recipient other than the
    uploader is granted access, so ``has_access`` agrees with who can decrypt.
    """
    sealed = seal_file(
        source, with_self(recipients, uploader), uploader, output, store=store, progress=progress
    )
    manifest_cid = publish_manifest(sealed, store)
    receipt = record_manifest(ledger, uploader, manifest_cid, sealed.manifest)
    for card in recipients:
        if card.address != uploader.address:
            ledger.grant(uploader.account, cid_bytes(manifest_cid), card.address)
    assert sealed.manifest.cid is not None
    return SealReceipt(manifest_cid, sealed.manifest.cid, sealed, receipt)


def record_manifest(ledger: Ledger, uploader: Identity, manifest_cid: str, m: Manifest) -> Receipt:
    """Commit a manifest's hashes under its CID (a transaction, or a batched log entry)."""
    return ledger.store_record(
        uploader.account, cid_bytes(manifest_cid), m.chain.h1, m.chain.h3, m.pixel_digest
    )


def issue_grant(
    manifest_cid: str, owner: Identity, grantee: IdentityCard, store: BlobStore
) -> Grant:
    """Unwrap the file key from the stored envelope with the owner's key; re-wrap for grantee."""
    manifest = load_manifest(store, manifest_cid)
    if manifest.uploader.address != owner.address:
        raise AccessDenied(f"{owner.name} is not the owner of record {manifest_cid}")
    assert manifest.cid is not None
    with store.get(manifest.cid) as stream:
        header = envelope.read_header(stream)
    file_key = envelope.unlock(header, owner.transport_keys.values())
    return make_grant(manifest_cid, header, file_key, owner, grantee, int(time.time()))


def grant(
    manifest_cid: str, owner: Identity, grantee: IdentityCard, *, store: BlobStore, ledger: Ledger
) -> GrantReceipt:
    """Publish a signed grant for ``grantee`` in the store and record the grant on chain."""
    issued = issue_grant(manifest_cid, owner, grantee, store)
    grant_cid = store.put(io.BytesIO(issued.to_bytes()))
    receipt = ledger.grant(owner.account, cid_bytes(manifest_cid), grantee.address)
    return GrantReceipt(issued, grant_cid, receipt)


def revoke(manifest_cid: str, owner: Identity, grantee: str, *, ledger: Ledger) -> Receipt:
    """Stop future releases to ``grantee``; what it already opened stays with it."""
    return ledger.revoke(owner.account, cid_bytes(manifest_cid), grantee)


# --- open, verify, audit ------------------------------------------------------------------------


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


def open_record(
    manifest_cid: str,
    identity: Identity,
    output: Path,
    *,
    store: BlobStore,
    ledger: Ledger,
    grant: Grant | None = None,
) -> OpenedFile:
    """Ask the ledger (which logs the attempt), then fetch, check and decrypt the record."""
    result = ledger.log_access(
        identity.account, cid_bytes(manifest_cid), identity.address, AccessType.DOWNLOAD
    )
    if not result.allowed:
        raise AccessDenied(f"the ledger denies {identity.name} access to {manifest_cid}")
    hashes = LedgerHashes.of(ledger.get_record(cid_bytes(manifest_cid)))
    with tempfile.TemporaryDirectory(prefix="scanseal-fetch-") as scratch:
        envelope_path = fetch_sealed(manifest_cid, store, Path(scratch))
        manifest = Manifest.load(envelope_path.with_name(envelope_path.name + ".manifest.json"))
        return open_checked(envelope_path, manifest, identity, output, hashes, grant=grant)


def open_checked(
    envelope_path: Path,
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
    hashes all held; otherwise nothing is written.
    """
    manifest.verify_signature()
    hashes.check(manifest)
    granted = None if grant is None else grant.verify(manifest.uploader.address)
    with _plaintext_output(output) as (dst, _):
        metadata = _decrypt(envelope_path, manifest, identity, dst, granted, progress)
    return OpenedFile(output, manifest, metadata)


def _decrypt(
    envelope_path: Path,
    manifest: Manifest,
    identity: Identity,
    dst: object,
    granted: Header | None,
    progress: Progress | None,
) -> ImageMetadata:
    plain = HashingWriter(dst)  # type: ignore[arg-type]  # duck-typed: only write() is used
    observe = None if progress is None else (lambda chunk: progress(len(chunk)))
    with envelope_path.open("rb") as raw:
        src = HashingReader(raw)
        original = envelope.read_header(src)  # type: ignore[arg-type]  # duck-typed read()
        header = original
        if granted is not None:
            check_same_payload(original, granted)
            header = granted
        file_key = envelope.unlock(header, identity.transport_keys.values())
        envelope.decrypt_payload(
            src,  # type: ignore[arg-type]  # duck-typed: only read() is used
            plain,  # type: ignore[arg-type]  # duck-typed: only write() is used
            file_key,
            header,
            observe,
        )
    if src.digest.digest() != manifest.envelope_sha256 or src.size != manifest.envelope_size:
        raise IntegrityError("envelope bytes differ from the signed manifest's digest")
    _check_recipients(original, manifest)
    canonical = decrypt_metadata(file_key, header.salt, manifest.metadata_ciphertext)
    verify_chain(manifest.chain, plain.digest.digest(), canonical)
    return ImageMetadata.from_dict(_parse_metadata(canonical))


def verify_record(manifest_cid: str, *, store: BlobStore, ledger: Ledger) -> VerifyReport:
    """Public checks (no key): signature, envelope digest and CID, recipients, H3, ledger."""
    with tempfile.TemporaryDirectory(prefix="scanseal-verify-") as scratch:
        envelope_path = fetch_sealed(manifest_cid, store, Path(scratch))
        report = verify_sealed(envelope_path)
    LedgerHashes.of(ledger.get_record(cid_bytes(manifest_cid))).check(report.manifest)
    report.checks.append("H1, H3 and pixel digest match the ledger record")
    return report


def audit(manifest_cid: str, ledger: Ledger) -> list[AuditEntry]:
    """Every stored, granted, revoked and access event of the record, oldest first."""
    return ledger.audit_trail(cid_bytes(manifest_cid))


def load_manifest(store: BlobStore, manifest_cid: str) -> Manifest:
    """A stored manifest, verified against its CID (by the store) and its signature."""
    with store.get(manifest_cid) as stream:
        manifest = Manifest.from_json(stream.read())
    manifest.verify_signature()
    return manifest
