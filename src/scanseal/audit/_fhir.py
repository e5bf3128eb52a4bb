"""FHIR R4 AuditEvent resources in a Bundle, built and validated with ``fhir.resources``.

``fhir.resources`` 8 defaults to FHIR R5, whose AuditEvent differs (``code``, ``agent.who``
required, no ``outcomeDesc``); its ``R4B`` package (FHIR 4.3) carries the AuditEvent and Bundle
of R4 unchanged, so that is what validates here (docs/AUDIT.md).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from scanseal.audit._codes import DCM_SYSTEM, Code, classify, object_uri, participant

ACCOUNT_SYSTEM: Final = "urn:ietf:rfc:3986"
_SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
_ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
_NAMESPACE: Final = uuid.UUID("5b7d1e0a-7c3e-4f0e-9a52-3c1f3c0b2f61")


@dataclass(frozen=True)
class Source:
    """Who reports the trail: ``name`` (a gateway's address, or the ledger's contract) and
    ``site`` (its URL, or ``ledger``)."""

    name: str
    site: str


def to_fhir(record: str, events: list[dict[str, Any]], source: Source) -> dict[str, Any]:
    """A ``collection`` Bundle of one AuditEvent per trail event, validated as FHIR R4."""
    from fhir.resources.R4B.auditevent import AuditEvent  # loaded only for an export
    from fhir.resources.R4B.bundle import Bundle

    entries = []
    for index, event in enumerate(events):
        resource = AuditEvent.model_validate(_audit_event(record, event, source))
        key = f"{record}/{index}/{event.get('evidence')}"
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}", "resource": resource})
    bundle = Bundle.model_validate({"type": "collection", "entry": entries})
    answer: dict[str, Any] = json.loads(bundle.model_dump_json(exclude_none=True))
    return answer


def to_fhir_json(record: str, events: list[dict[str, Any]], source: Source) -> str:
    return json.dumps(to_fhir(record, events, source), indent=2) + "\n"


def to_fhir_of(events: list[tuple[str, dict[str, Any]]], source: Source) -> dict[str, Any]:
    """One Bundle of the events of several records, (record, event) pairs as a query returns,
    each record's AuditEvents as :func:`to_fhir` makes them."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record, event in events:
        grouped.setdefault(record, []).append(event)
    bundles = [to_fhir(record, rows, source) for record, rows in grouped.items()]
    if not bundles:
        return to_fhir("query", [], source)
    return {**bundles[0], "entry": [e for b in bundles for e in b.get("entry", [])]}


def to_fhir_json_of(events: list[tuple[str, dict[str, Any]]], source: Source) -> str:
    return json.dumps(to_fhir_of(events, source), indent=2) + "\n"


def _coding(system: str, code: Code) -> dict[str, str]:
    return {"system": system, "code": code.code, "display": code.meaning}


def _audit_event(record: str, event: dict[str, Any], source: Source) -> dict[str, Any]:
    kind = classify(event)
    resource: dict[str, Any] = {
        "type": _coding(DCM_SYSTEM, kind.event_id),
        "action": kind.action,
        "recorded": event["time"],
        "outcome": str(kind.outcome),
        "agent": _agents(event),
        "source": {
            "site": source.site,
            "observer": {"display": source.name},
            "type": [{"system": _SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": [_entity(record, event)],
    }
    if kind.event_type is not None:
        resource["subtype"] = [_coding(DCM_SYSTEM, kind.event_type)]
    description = event.get("reason") or event.get("detail")
    if description and description != "none":
        resource["outcomeDesc"] = str(description)
    return resource


def _agents(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The account that wrote the event, and the one it concerns (the requester of an access
    attempt, a grantee); an identity that was only claimed is named as a claim."""
    attempt = event.get("access_type") is not None
    agents = [_agent(event.get("actor"), event.get("actor_name"), not attempt)]
    subject = event.get("subject")
    if subject:
        if event.get("subject_verified") is False:
            claimed = event.get("claimed_name") or "unknown"
            agents.append(_agent(subject, f"unverified claim: {claimed}", True))
        else:
            agents.append(_agent(subject, event.get("subject_name"), attempt))
    return agents


def _agent(address: object, name: object, requestor: bool) -> dict[str, Any]:
    who = {"identifier": {"system": ACCOUNT_SYSTEM, "value": f"urn:eip155:account:{address}"}}
    return {
        "who": {**who, "display": participant(address, name)},
        "altId": str(address),
        **({"name": str(name)} if name else {}),
        "requestor": requestor,
    }


def _entity(record: str, event: dict[str, Any]) -> dict[str, Any]:
    details = [{"type": "evidence", "valueString": str(event.get("evidence") or "")}]
    details.append({"type": "ledger", "valueString": str(event.get("source") or "chain")})
    return {
        "what": {"identifier": {"system": "urn:ietf:rfc:3986", "value": object_uri(record)}},
        "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        "name": record,
        "detail": details,
    }
