"""Registering a study manifest: one ledger record that proves a whole study.

The gateway runs :func:`register_study` after authenticating the uploader's request: the study
manifest (docs/FORMAT.md §7) must be canonical, signed by that uploader, rooted over its
instances, and name only instance records the uploader owns on this gateway. It is then stored
and recorded on the ledger as one record under its own CID, its hashes standing for the study:
``image_hash`` = the Merkle root over the instances' records, ``h3`` = SHA-256 of the stored
manifest, ``pixel_digest`` = the Study Instance UID digest. One transaction (or one batched
entry) anchors the study; each instance keeps its own record and proofs, and proves its
membership with an inclusion proof against the root.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound
from scanseal.ledger import Receipt
from scanseal.storage import cid_of
from scanseal.transfer.records import Records, cid_bytes
from scanseal.transfer.study_manifest import StudyManifest


@dataclass(frozen=True)
class StudyRecord:
    cid: str
    manifest: StudyManifest
    receipt: Receipt


def study_hashes(manifest: StudyManifest, stored: bytes) -> tuple[bytes, bytes, bytes]:
    """The three hashes the ledger holds for a study record (image hash, h3, pixel digest)."""
    return manifest.merkle_root, hashlib.sha256(stored).digest(), manifest.study_uid_sha256


def register_study(
    records: Records, stored: bytes, requester: str, owner_of: Callable[[str], str | None]
) -> StudyRecord:
    """Check, store and record the study manifest ``stored`` for ``requester``; repeating it
    answers the first registration's receipt. ``owner_of`` names a held record's owner."""
    manifest = StudyManifest.from_bytes(stored)
    if manifest.to_bytes() != stored:
        raise InvalidInput("a study manifest is registered in its canonical form only")
    manifest.verify()
    if manifest.uploader_address != requester:
        raise AccessDenied("only the study manifest's uploader may register it")
    for record in manifest.instances:
        owner = owner_of(record)
        if owner is None:
            raise NotFound(f"instance record {record} is not held by this gateway")
        if owner != requester:
            raise AccessDenied(f"{requester} is not the owner of instance record {record}")
    cid = records.store.put(io.BytesIO(stored))
    if cid != cid_of(io.BytesIO(stored)):
        raise IntegrityError("the store named the study manifest with another CID")
    hashes = study_hashes(manifest, stored)
    binary = cid_bytes(cid)
    receipt = records.ledger.record_receipt(binary)
    if receipt is None:
        receipt = records.ledger.store_record(records.operator, binary, *hashes)
    else:
        held = records.ledger.get_record(binary)
        if (held.image_hash, held.h3, held.pixel_digest) != hashes:
            raise IntegrityError(f"study record {cid} is on the ledger with other hashes")
    return StudyRecord(cid, manifest, receipt)
