"""The gateway's signed reads that may go through a study record: an inbox page and an audit
trail. A study's instances are readable, and their trails too, by whoever the ledger lets read
the study record (``_study_index.StudyAccess``); these decide as :class:`Gateway` does for one
record, and refuse (logged) in the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scanseal.audit import with_names
from scanseal.errors import AccessDenied, InvalidInput, ReplayDetected
from scanseal.ledger import AccessType
from scanseal.service._requests import record_bytes
from scanseal.service.gateway import Gateway
from scanseal.service.inbox import PAGE


def inbox_for(gateway: Gateway, after: int, headers: Mapping[str, str | None]) -> dict[str, Any]:
    """The caller's records announced after cursor ``after`` that the ledger still lets it
    read, and the cursor to ask from next (the request signs the cursor as its record)."""
    if not 0 <= after < 2**63:
        raise InvalidInput("after must be a sequence number (0 to 2**63 - 1)")
    who = gateway.authenticate("inbox", str(after), headers, b"")
    entries = gateway.inbox.after(who.requester, after)
    readable = gateway.locked(
        lambda: [e for e in entries if gateway.studies.readable(e.manifest_cid, who.requester)]
    )
    return {
        "records": [{"seq": e.seq, "record": e.manifest_cid} for e in readable],
        "next": entries[-1].seq if entries else after,
        "more": len(entries) == PAGE,
    }


def audit(gateway: Gateway, record: str, headers: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The record's trail, for its owner, its current grantees and configured auditors; a
    study record's is the study's and each of its instances' (each event names its
    record)."""
    binary = record_bytes(record)
    try:
        who = gateway.authenticate("audit", record, headers, b"")
        stored = gateway.state.record(record)
        may = (
            (stored is not None and stored.owner == who.requester)
            or gateway.config.is_auditor(who.requester, gateway.members.names())
            or gateway.locked(lambda: gateway.studies.readable(record, who.requester))
            or gateway.locked(lambda: gateway.studies.may_audit(record, who.requester))
        )
        if not may:
            raise AccessDenied(f"{who.requester} may not read the audit trail of {record}")
    except (AccessDenied, ReplayDetected):
        gateway.log_refusal(AccessType.AUDIT, "audit", record, headers)
        raise
    if gateway.studies.index.study(record) is not None:  # a study: its instances' too
        trail = gateway.locked(lambda: gateway.studies.trail(record))
        return with_names(trail, gateway.members.names())
    entries = gateway.locked(lambda: gateway.records.audit(binary))
    return with_names([entry.to_dict() for entry in entries], gateway.members.names())
