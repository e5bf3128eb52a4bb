"""Registering a study manifest: one ledger record that proves a whole study.

The gateway runs :func:`register_study` after authenticating the uploader's request: the study
manifest (docs/FORMAT.md §7) must be canonical, signed by that uploader, rooted over its
instances, and name only instance records the uploader owns on this gateway. It is then stored
and recorded on the ledger as one record under its own CID, its hashes standing for the study:
``image_hash`` = the Merkle root over the instances' records, ``h3`` = SHA-256 of the stored
manifest, ``pixel_digest`` = the Study Instance UID digest. One transaction (or one batched
entry) anchors the study; each instance keeps its own record and proofs, and proves its
membership with an inclusion proof against the root.

:func:`study_grants` and :func:`send_grants` then open the study to the recipients its
instances name (docs/PROTOCOL.md, *Studies*): one ``grantAccessBatch`` grants the study record
to the recipients every instance names (a read of an instance is then decided through it,
``logAccessVia``), each instance naming others grants those on the instance itself, and in
batched mode each instance that no grant reserved yet is reserved in the same transaction.
So an upload that deferred its recipients' grant to its study costs no transaction of its own,
and a study costs one grant transaction, not one per instance.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound
from scanseal.ledger import MAX_BATCH_GRANTS, GrantState, Receipt
from scanseal.storage import cid_of
from scanseal.transfer.records import Records, cid_bytes
from scanseal.transfer.study_manifest import StudyManifest

Pair = tuple[bytes, str]
"""A record (binary CID) and the account to grant it to."""


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


def study_grants(
    records: Records,
    study: str,
    recipients_of: Mapping[str, Sequence[str]],
    reserve: Sequence[str] = (),
    closed: Collection[str] = (),
) -> list[Pair]:
    """The grants a registered ``study`` still needs so that every account an instance's
    manifest names (``recipients_of``: instance record -> its recipients) may read it: the
    study record for the accounts every instance names, the instance itself for an account
    only some name. An account whose grant on some instance its owner revoked is not given
    the study record (it would reopen that instance): it gets grants of its own on the
    others. A grant once revoked is never renewed, so a repeated registration asks for
    nothing new, and ``closed`` (accounts whose grant on another study record listing these
    instances was revoked) get no grant at all. ``reserve``: batch records to reserve
    (``isReserved``, docs/LEDGER.md) with a grant to the operator itself, unless one of these
    grants does or one to the operator or a recipient was ever made."""
    ledger, binary = records.ledger, cid_bytes(study)
    lists = [[a for a in accounts if a not in closed] for accounts in recipients_of.values()]
    instances = [cid_bytes(record) for record in recipients_of]
    common = [a for a in lists[0] if all(a in other for other in lists[1:])] if lists else []
    common = [
        account
        for account in common
        if all(ledger.grant_state(i, account) != GrantState.REVOKED for i in instances)
    ]
    pairs = [(binary, account) for account in records.ungranted(binary, common)]
    for instance, accounts in zip(instances, lists, strict=True):
        extra = [account for account in accounts if account not in common]
        pairs += [(instance, account) for account in records.ungranted(instance, extra)]
    granted = {record for record, _account in pairs}
    for record in reserve:
        instance, holders = cid_bytes(record), [*recipients_of.get(record, ()), records.address]
        never = all(ledger.grant_state(instance, x) == GrantState.NEVER for x in holders)
        if instance not in granted and never:  # a first grant, made here or before, reserves
            pairs.append((instance, records.address))
    return pairs


def send_grants(records: Records, pairs: Sequence[Pair]) -> list[Receipt]:
    """``pairs`` granted by the operator, :data:`MAX_BATCH_GRANTS` per transaction (each one
    all or none); the receipts."""
    return [
        records.ledger.grant_many(records.operator, pairs[start : start + MAX_BATCH_GRANTS])
        for start in range(0, len(pairs), MAX_BATCH_GRANTS)
    ]
