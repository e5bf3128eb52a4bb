"""Signed audit queries across records: ``POST /v1/audit`` (docs/PROTOCOL.md, docs/AUDIT.md).

The body is a JSON object of filters, signed as an ``audit`` request whose record is
``query`` (the body hash binds the filters): ``records`` (manifest CIDs: a record, or what a
client resolved a study or a patient to from its own catalogue, since only a recipient can read
a record's metadata), ``identity`` (actor or subject), ``actor``, ``subject`` (an address or a
member's card name), ``action``, ``outcome``, ``since`` and ``until`` (ISO 8601), ``limit``
(1 to 500, default 100) and ``cursor`` (the ``next`` of the page before).

Who sees what: the gateway's auditors (``[gateway] auditors``, addresses or card names)
every event; a member the events
of the records it owns or may read and those where it is the actor or the subject. A query that
names a record the caller may not read, or whose signature, window or nonce fails, is refused
(403) and the refusal is logged on the ledger as a denied attempt of access type AUDIT for each
record it named (a query naming none has no record to log against; the access log keeps it).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, Final

from eth_utils.address import is_address, to_checksum_address
from fastapi import APIRouter, Request
from pydantic import BaseModel

from scanseal._json import Reader, parse_object
from scanseal.audit import with_names
from scanseal.errors import AccessDenied, InvalidInput, ReplayDetected
from scanseal.ledger import AccessType
from scanseal.service._http import MAX_JSON_BODY, read_body
from scanseal.service.apidocs import SIGNED_ROUTE
from scanseal.service.audit_index import Filters, Row, encode_cursor, rid_of
from scanseal.service.bodies import AuditQueryBody, json_body
from scanseal.service.gateway import Gateway
from scanseal.service.inbox import PAGE
from scanseal.service.routes import AuditLine, GatewayDep, Run, Signed
from scanseal.transfer import cid_bytes

QUERY_RECORD: Final = "query"
"""The ``record`` an audit query's request is signed for."""
ACTIONS: Final = ("stored", "granted", "revoked", "access", "admin")
OUTCOMES: Final = ("success", "denied", "unauthenticated")
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500
MAX_RECORDS: Final = 1000
_REFUSALS_LOGGED: Final = 16
_WHAT: Final = "audit query"


def query(gateway: Gateway, headers: dict[str, str | None], body: bytes) -> dict[str, Any]:
    """Authenticate, check rights (a refusal is logged), then answer one page from the index,
    its rows checked against the ledger."""
    reader = Reader(parse_object(body, _WHAT), _WHAT)
    records = _records(reader)
    try:
        who = gateway.authenticate("audit", QUERY_RECORD, headers, body).requester
        auditor = gateway.config.is_auditor(who, gateway.members.names())
        if not auditor:
            _check_readable(gateway, who, records)
    except (AccessDenied, ReplayDetected):
        for record in records[:_REFUSALS_LOGGED]:
            gateway.log_refusal(AccessType.AUDIT, "audit", record, headers)
        raise
    filters = _filters(gateway, reader, records, None if auditor else _scope(gateway, who))
    limit = _limit(reader)
    cursor = reader.text("cursor") if "cursor" in reader.fields() else None
    return gateway.locked(lambda: _page(gateway, filters, cursor, limit))


def _page(gateway: Gateway, filters: Filters, cursor: str | None, limit: int) -> dict[str, Any]:
    index = gateway.audit_index
    index.sync(gateway.ledger, gateway.state.held())
    rows, more = index.select(filters, cursor, limit)
    repaired, fresh = index.verify(gateway.ledger, rows)
    if repaired:  # rows were edited, forged or lost: select again from the repaired index
        rows, more = index.select(filters, cursor, limit)
        fresh.update(index.verify(gateway.ledger, rows)[1])
    events = [_event(index.record_cid(row.rid), row, fresh) for row in rows]
    return {
        "events": with_names(events, gateway.members.names()),
        "next": encode_cursor(rows[-1]) if more and rows else None,
        "repaired": repaired,
    }


def _event(cid: str | None, row: Row, fresh: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The row as the ledger has it now (an anchored proof replaces 'pending'), with its
    record's CID (None for an administrative change or a record of another gateway) and its
    recordId."""
    event = fresh.get(row.ukey, row.event)
    rid = None if not row.rid else "0x" + row.rid
    return {"record": cid, "record_id": rid, **event}


def _records(reader: Reader) -> list[str]:
    if "records" not in reader.fields():
        return []
    value = reader.value("records")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        reader.fail("records", "must be a list of manifest CIDs")
    if not value:  # an empty list would select nothing; left out, it means any record
        reader.fail("records", "names no record (leave it out to query every record)")
    if len(value) > MAX_RECORDS:
        reader.fail("records", f"names more than {MAX_RECORDS} records")
    for cid in value:
        try:
            cid_bytes(cid)
        except InvalidInput:
            reader.fail("records", f"{cid[:80]!r} is not a CID")
    return list(value)


def _check_readable(gateway: Gateway, who: str, records: list[str]) -> None:
    for record in records:
        stored = gateway.state.record(record)
        owned = stored is not None and stored.owner == who
        may = functools.partial(gateway.studies.readable, record, who)  # or through a study
        if not owned and not gateway.locked(may):
            raise AccessDenied(f"{who} may not read the audit trail of {record}")


def _scope(gateway: Gateway, who: str) -> tuple[str, tuple[str, ...]]:
    """A member's visibility: itself, and the records it owns or was announced and may read."""
    state = gateway.state
    readable = [c for c in state.held() if (s := state.record(c)) is not None and s.owner == who]
    after = 0
    while True:
        entries = gateway.inbox.after(who, after)
        readable.extend(e.manifest_cid for e in entries)
        if len(entries) < PAGE:
            break
        after = entries[-1].seq
    allowed = gateway.locked(
        lambda: [c for c in dict.fromkeys(readable) if gateway.studies.readable(c, who)]
    )  # fmt: skip
    return who, tuple(rid_of(cid) for cid in allowed)


def _filters(
    gateway: Gateway, reader: Reader, records: list[str], scope: tuple[str, tuple[str, ...]] | None
) -> Filters:
    reader.only(
        "records", "identity", "actor", "subject", "action", "outcome", "since", "until",
        "limit", "cursor",
    )  # fmt: skip
    names = {name: address for address, name in gateway.members.names().items()}
    who = {key: _identity(reader, key, names) for key in ("identity", "actor", "subject")}
    return Filters(
        rids=tuple(rid_of(cid) for cid in records) if records else None,
        **who,
        action=_choice(reader, "action", ACTIONS),
        outcome=_choice(reader, "outcome", OUTCOMES),
        since=_time(reader, "since"),
        until=_time(reader, "until"),
        scope=scope,
    )


def _identity(reader: Reader, key: str, names: dict[str, str]) -> str | None:
    if key not in reader.fields():
        return None
    value = reader.text(key)
    if is_address(value):
        return to_checksum_address(value)
    if value in names:
        return names[value]
    reader.fail(key, f"{value[:80]!r} is neither an address nor a member's name")


def _choice(reader: Reader, key: str, allowed: tuple[str, ...]) -> str | None:
    if key not in reader.fields():
        return None
    value = reader.text(key)
    if value not in allowed:
        reader.fail(key, f"must be one of {', '.join(allowed)}")
    return value


def _time(reader: Reader, key: str) -> int | None:
    """An ISO 8601 time (a zone required) as Unix seconds."""
    if key not in reader.fields():
        return None
    text = reader.text(key)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        reader.fail(key, "must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z")
    if when.tzinfo is None:
        reader.fail(key, "must carry its zone (Z or +hh:mm)")
    return int(when.astimezone(UTC).timestamp())


def _limit(reader: Reader) -> int:
    if "limit" not in reader.fields():
        return DEFAULT_LIMIT
    limit = reader.integer("limit")
    if not 1 <= limit <= MAX_LIMIT:
        reader.fail("limit", f"must be 1 to {MAX_LIMIT}")
    return limit


# --- the route


class AuditPage(BaseModel):
    """One page of a query: events in chain order (``AuditLine`` with their record), the
    cursor of the next page (None on the last), and how many index rows the ledger corrected."""

    events: list[dict[str, Any]]
    next: str | None
    repaired: int


router = APIRouter(prefix="/v1", tags=["audit"])


@router.post(
    "/audit", response_model=AuditPage,
    summary="Audit events across records, by identity, record, action, outcome and time",
    openapi_extra={**SIGNED_ROUTE, **json_body(AuditQueryBody)},
    responses={200: {"description": f"events as {AuditLine.__name__} plus record"}},
)  # fmt: skip
async def audit_query(request: Request, signed: Signed, gateway: GatewayDep, run: Run) -> Any:
    body = await read_body(request, MAX_JSON_BODY)
    return await run("audit-query", lambda: query(gateway, signed, body))
