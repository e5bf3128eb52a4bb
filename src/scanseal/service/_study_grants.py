"""Opening a registered study to its recipients: the grants its instances' uploads deferred.

``scanseal send`` uploads the instances of a DICOM study with their recipients' grant deferred
to the study (the signed upload body says ``"grants": "study"``, docs/PROTOCOL.md): the
gateway stores and registers each one but grants and announces nothing, and notes it as
*awaiting its study* (``GatewayState.awaiting_study``, on disk with the upload's pending row;
the start-up reconciliation leaves such an upload ungranted). Until a study record that lists
it is registered, no recipient may read it: a fetch is refused and logged as any other.

:func:`settle` runs after a study's registration (and again for any study a crash left
half-settled, :func:`settle_interrupted`): one ``grantAccessBatch`` (or one per 256 pairs) from
``transfer.study_records.study_grants``, then each instance that waited is announced to its
recipients and stops waiting. Every step is idempotent, so a repeated registration — a send
run again — finishes what an interrupted one began.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from scanseal.ledger import GrantState, Ledger, Receipt
from scanseal.service._requests import read_all
from scanseal.service._study_index import StudyAccess
from scanseal.service.audit_index import AuditIndex
from scanseal.service.inbox import Inbox
from scanseal.service.state import GatewayState
from scanseal.storage import BlobStore
from scanseal.transfer.manifest import Manifest
from scanseal.transfer.records import Records, cid_bytes
from scanseal.transfer.study_manifest import StudyManifest
from scanseal.transfer.study_records import send_grants, study_grants

T = TypeVar("T")


class Gateway(Protocol):
    """What settling a study needs of ``service.gateway.Gateway`` (which imports this module)."""

    ledger: Ledger
    store: BlobStore
    state: GatewayState
    records: Records
    inbox: Inbox
    audit_index: AuditIndex
    studies: StudyAccess

    def locked(self, work: Callable[[], T]) -> T: ...


def settle(gateway: Gateway, study: str, manifest: StudyManifest) -> list[Receipt]:
    """Grant the registered (and indexed) ``study`` to the recipients its instances name,
    announce the instances that waited for it; the grant transactions' receipts."""
    instances = list(manifest.instances)
    waiting = gateway.state.awaiting_study(instances)
    recipients_of = {
        record: [r.address for r in Manifest.from_json(read_all(gateway.store, record)).recipients]
        for record in instances
    }
    batched = gateway.ledger.mode == "batched"
    reserve = [record for record in instances if record in waiting] if batched else []

    def on_chain() -> list[Receipt]:
        closed = _revoked_elsewhere(gateway, study, recipients_of)
        pairs = study_grants(gateway.records, study, recipients_of, reserve, closed)
        for record in {record for record, _account in pairs}:
            gateway.audit_index.touch(record)
        return send_grants(gateway.records, pairs)

    receipts = gateway.locked(on_chain)
    announced = [(record, account) for record in instances if record in waiting
                 for account in recipients_of[record]]  # fmt: skip
    gateway.inbox.announce(announced)
    gateway.state.end_awaiting(sorted(waiting))
    return receipts


def _revoked_elsewhere(
    gateway: Gateway, study: str, recipients_of: dict[str, list[str]]
) -> set[str]:
    """The accounts among the recipients whose grant on another study record listing one of
    these instances was revoked: a new study record over them must not reopen them."""
    others: set[str] = set()
    for record in recipients_of:
        stored = gateway.state.record(record)
        if stored is not None:
            others.update(gateway.studies.index.holding(record, stored.owner))
    others.discard(study)
    accounts = {account for accounts in recipients_of.values() for account in accounts}
    return {
        account
        for account in accounts
        for other in others
        if gateway.ledger.grant_state(cid_bytes(other), account) == GrantState.REVOKED
    }


def settle_interrupted(gateway: Gateway) -> int:
    """:func:`settle` each registered study that lists an instance still awaiting its study (a
    crash came between the study's registration and its grants); how many."""
    studies: set[str] = set()
    for record in gateway.state.awaiting_study():
        stored = gateway.state.record(record)
        if stored is not None:
            studies.update(gateway.studies.index.holding(record, stored.owner))
    for study in sorted(studies):
        settle(gateway, study, StudyManifest.from_bytes(read_all(gateway.store, study)))
    return len(studies)
