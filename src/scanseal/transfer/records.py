"""The record operations on the ledger: register, authorize a fetch, grant, revoke, audit, verify.

A *record* is one sealed image registered on the ledger under its manifest CID. :class:`Records`
is the one implementation of what happens to a record, acting with one operator account over a
:class:`~scanseal.ledger.Ledger` and a :class:`~scanseal.storage.BlobStore`: the department
gateway runs it with its admin account after it has authenticated a request (and holds its
ledger lock around each call; ``Records`` itself does not lock), and a site with its own node can
run it with its own uploader account.

Opening checks every hash three ways: the envelope against the signed manifest, the decrypted
bytes against the manifest's hash chain, and the manifest's hashes against the ledger record.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from scanseal.crypto import envelope
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, ScanSealError
from scanseal.ledger import (
    AccessResult,
    AccessType,
    AuditEntry,
    GrantState,
    Ledger,
    Reason,
    Receipt,
)
from scanseal.storage import CID, BlobStore
from scanseal.transfer.checked import LedgerHashes, open_checked
from scanseal.transfer.grants import Grant, issue_grant
from scanseal.transfer.local import OpenedFile, VerifyReport, verify_sealed
from scanseal.transfer.manifest import Manifest
from scanseal.transfer.stored import fetch_sealed


def cid_bytes(cid: str) -> bytes:
    """The binary form of a CID as text, which is what the ledger keys records by."""
    return CID.parse(cid).to_bytes()


@dataclass(frozen=True)
class Registration:
    """A registered upload: its record (manifest CID), envelope, ledger receipt and the
    recipients granted on the ledger (those the manifest names; none when their grant waits
    for the upload's study record)."""

    manifest_cid: str
    envelope_cid: str
    receipt: Receipt
    granted: tuple[str, ...]


class Registrar(Protocol):
    """Who registers sealed uploads for a receiver (the gateway): the half of an upload that
    follows authentication. The DICOM receiver depends on this, not on the gateway."""

    def register_upload(self, manifest_bytes: bytes, payload: bytes, uploader: str) -> Registration:
        """Store, register and grant one sealed upload by ``uploader`` (its manifest's signer)."""
        ...


def signed_manifest(manifest_bytes: bytes) -> Manifest:
    """A manifest as received, parsed and with its uploader's signature checked."""
    manifest = Manifest.from_json(manifest_bytes)
    manifest.verify_signature()
    return manifest


def store_sealed(
    store: BlobStore, manifest: Manifest, manifest_bytes: bytes, payload: bytes
) -> str:
    """Store an envelope and its manifest once the envelope is the one the manifest signs;
    returns the envelope's CID."""
    digest = hashlib.sha256(payload).digest()
    if digest != manifest.envelope_sha256 or len(payload) != manifest.envelope_size:
        raise IntegrityError("envelope bytes differ from the signed manifest's digest")
    envelope_cid = store.put(io.BytesIO(payload))
    if envelope_cid != manifest.cid:
        raise IntegrityError("envelope does not hash to the CID the manifest names")
    store.put(io.BytesIO(manifest_bytes))
    return envelope_cid


class Records:
    """Record operations acting with ``operator`` (the account that pays and signs)."""

    def __init__(self, ledger: Ledger, store: BlobStore, operator: LocalAccount) -> None:
        self.ledger = ledger
        self.store = store
        self.operator = operator
        self.address = to_checksum_address(operator.address)

    def register(self, manifest_cid: str, manifest: Manifest, *, grant: bool = True) -> Receipt:
        """Record a stored manifest on the ledger and grant its recipients (unless ``grant`` is
        False: the caller grants them, several uploads in one transaction), or find it there
        already (an upload repeated after a crash, or sent twice): the same manifest CID with
        the same hashes from this operator is the same record and answers with the receipt it
        was first committed with.

        Every recipient is checked before anything is written, so a refusal leaves no
        half-registered record behind."""
        for recipient in manifest.recipients:
            if self.ledger.identity_of(recipient.address) is None:
                raise InvalidInput(f"recipient {recipient.name} is not registered on the ledger")
        receipt = self.registered(manifest_cid, manifest)
        if receipt is None:
            try:
                receipt = self.ledger.store_record(
                    self.operator, cid_bytes(manifest_cid), manifest.chain.h1, manifest.chain.h3,
                    manifest.pixel_digest,
                )  # fmt: skip
            except ScanSealError:
                receipt = self.registered(manifest_cid, manifest)  # mined after all (a timeout)
                if receipt is None:
                    raise
        if grant:
            self.grant_recipients(cid_bytes(manifest_cid), manifest)
        return receipt

    def registered(self, manifest_cid: str, manifest: Manifest) -> Receipt | None:
        """The receipt of this manifest's record if the ledger already holds it; refuses a
        record under this CID that this operator did not register with these hashes."""
        binary = cid_bytes(manifest_cid)
        receipt = self.ledger.record_receipt(binary)
        if receipt is None:
            return None
        held = self.ledger.get_record(binary)
        same = (held.image_hash, held.h3, held.pixel_digest) == (
            manifest.chain.h1, manifest.chain.h3, manifest.pixel_digest,
        ) and to_checksum_address(held.uploader) == self.address  # fmt: skip
        if not same:
            raise IntegrityError(
                f"record {manifest_cid} is on the ledger with other hashes or another uploader"
            )
        return receipt

    def complete(self, manifest_cid: str, manifest: Manifest, *, grant: bool = True) -> bool:
        """Finish a registration the ledger holds (a crash came after its ledger write): grant
        the recipients not granted yet (unless ``grant`` is False: an upload whose grant waits
        for its study record, which must not turn into grants of its own here); False when
        the ledger holds no such record."""
        if self.registered(manifest_cid, manifest) is None:
            return False
        if grant:
            self.grant_recipients(cid_bytes(manifest_cid), manifest)
        return True

    def grant_recipients(self, record: bytes, manifest: Manifest) -> None:
        """Grant each recipient that was never granted. One whose grant the owner revoked
        since stays revoked when the upload is repeated."""
        for address in self.ungranted(record, [r.address for r in manifest.recipients]):
            self.ledger.grant(self.operator, record, address)

    def ungranted(self, record: bytes, accounts: list[str]) -> list[str]:
        """Those of ``accounts`` that may not open ``record`` and were never granted it (one
        whose grant the owner revoked stays revoked)."""
        return [
            account
            for account in accounts
            if not self.ledger.has_access(record, account)
            and self.ledger.grant_state(record, account) == GrantState.NEVER
        ]

    def authorize_fetch(
        self,
        record: bytes,
        requester: str,
        reason: Reason = Reason.NONE,
        via: bytes | None = None,
    ) -> AccessResult:
        """Ask the ledger whether ``requester`` may read the record, logging the attempt either
        way; a nonzero ``reason`` (a refusal found before the ledger) forces a denial. ``via``:
        a study record whose manifest lists this one and whose registrant owns it (checked by
        the caller), so a grant on the study allows the read too; the attempt is still logged
        for this record."""
        return self.ledger.log_access(
            self.operator, record, requester, AccessType.DOWNLOAD, reason, via=via
        )

    def report_refusal(
        self, record: bytes, requester: str, attempted: AccessType, reason: Reason
    ) -> AccessResult:
        """Log a refused attempt to grant, revoke or read the trail (``attempted``: GRANT,
        REVOKE or AUDIT) as what it was, denied with the reporter's ``reason`` (nonzero)."""
        if reason == Reason.NONE:
            raise InvalidInput("a refusal needs its reason")
        return self.ledger.log_access(self.operator, record, requester, attempted, reason)

    def grant(self, record: bytes, grantee: str) -> Receipt | None:
        """Grant ``grantee`` on the ledger; None when it may read the record already."""
        if self.ledger.has_access(record, grantee):
            return None
        return self.ledger.grant(self.operator, record, grantee)

    def revoke(self, record: bytes, grantee: str) -> Receipt | None:
        """Stop future releases to ``grantee`` (what it opened stays with it); None when the
        grant is revoked already (a repeated revocation whose answer was lost)."""
        if self.ledger.grant_state(record, grantee) == GrantState.REVOKED:
            return None
        return self.ledger.revoke(self.operator, record, grantee)

    def audit(self, record: bytes) -> list[AuditEntry]:
        """Every stored, granted, revoked and access event of the record, oldest first."""
        return self.ledger.audit_trail(record)

    def hashes(self, record: bytes) -> LedgerHashes:
        return LedgerHashes.of(self.ledger.get_record(record))

    def verify_record(self, manifest_cid: str, hashes: LedgerHashes | None = None) -> VerifyReport:
        """Public checks (no key): signature, envelope digest and CID, recipients, H3, and the
        ledger's hashes (``hashes`` when the caller holds them already)."""
        with tempfile.TemporaryDirectory(prefix="scanseal-verify-") as scratch:
            report = verify_sealed(fetch_sealed(manifest_cid, self.store, Path(scratch)))
        (hashes or self.hashes(cid_bytes(manifest_cid))).check(report.manifest)
        report.checks.append("H1, H3 and pixel digest match the ledger record")
        return report


def open_record(
    manifest_cid: str,
    identity: Identity,
    output: Path,
    *,
    records: Records,
    grant: Grant | None = None,
) -> OpenedFile:
    """Ask the ledger (which logs the attempt), then fetch, check and decrypt the record."""
    binary = cid_bytes(manifest_cid)
    if not records.authorize_fetch(binary, identity.address).allowed:
        raise AccessDenied(f"the ledger denies {identity.name} access to {manifest_cid}")
    hashes = records.hashes(binary)
    with tempfile.TemporaryDirectory(prefix="scanseal-fetch-") as scratch:
        envelope_path = fetch_sealed(manifest_cid, records.store, Path(scratch))
        manifest = Manifest.load(envelope_path.with_name(envelope_path.name + ".manifest.json"))
        return open_checked(envelope_path, manifest, identity, output, hashes, grant=grant)


def grant_stored(
    manifest_cid: str, owner: Identity, grantee: IdentityCard, store: BlobStore
) -> Grant:
    """A grant for ``grantee`` over a stored record, re-wrapped and signed by its owner."""
    with store.get(manifest_cid) as stream:
        manifest = signed_manifest(stream.read())
    if manifest.uploader.address != owner.address:
        raise AccessDenied(f"{owner.name} is not the owner of record {manifest_cid}")
    assert manifest.cid is not None
    with store.get(manifest.cid) as stream:
        header = envelope.read_header(stream)
    return issue_grant(manifest_cid, header, owner, grantee)
