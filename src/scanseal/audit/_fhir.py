"""FHIR AuditEvent resources in a Bundle, built and validated with ``fhir.resources``.

R4 by default: ``fhir.resources`` 8 defaults to FHIR R5, whose AuditEvent differs, and its
``R4B`` package (FHIR 4.3) carries the AuditEvent and Bundle of R4 unchanged, so that is what
validates an R4 export. ``release="R5"`` writes the same events as R5 AuditEvents, validated
with the package's default (R5) models: the DCM event ID becomes the ``category`` and the
event type the ``code``, the outcome a coded ``outcome.code`` with its reason as
``outcome.detail``, each agent its ``who`` (the account, named in its display), the source's
site a reference, and the record's ``detail`` types coded (docs/AUDIT.md).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final, Literal

from scanseal.audit._codes import DCM_SYSTEM, Code, classify, object_uri, participant
from scanseal.errors import InvalidInput

ACCOUNT_SYSTEM: Final = "urn:ietf:rfc:3986"
_SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
_ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
_OUTCOME: Final = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
_OUTCOME_MEANING: Final = {"0": "Success", "4": "Minor failure", "8": "Serious failure"}
_NAMESPACE: Final = uuid.UUID("5b7d1e0a-7c3e-4f0e-9a52-3c1f3c0b2f61")

Release = Literal["R4", "R5"]
RELEASES: Final[tuple[Release, ...]] = ("R4", "R5")


@dataclass(frozen=True)
class Source:
    """Who reports the trail: ``name`` (a gateway's address, or the ledger's contract) and
    ``site`` (its URL, or ``ledger``)."""

    name: str
    site: str


def to_fhir(
    record: str, events: list[dict[str, Any]], source: Source, release: Release = "R4"
) -> dict[str, Any]:
    """A ``collection`` Bundle of one AuditEvent per trail event, validated as FHIR
    ``release`` (R4, or R5)."""
    audit_event, bundle_model = _models(release)
    entries = []
    for index, event in enumerate(events):
        built = _audit_event(record, event, source)
        resource = audit_event.model_validate(built if release == "R4" else _as_r5(built))
        key = f"{record}/{index}/{event.get('evidence')}"
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}", "resource": resource})
    bundle = bundle_model.model_validate({"type": "collection", "entry": entries})
    answer: dict[str, Any] = json.loads(bundle.model_dump_json(exclude_none=True))
    return answer


def to_fhir_json(
    record: str, events: list[dict[str, Any]], source: Source, release: Release = "R4"
) -> str:
    return json.dumps(to_fhir(record, events, source, release), indent=2) + "\n"


def to_fhir_of(
    events: list[tuple[str, dict[str, Any]]], source: Source, release: Release = "R4"
) -> dict[str, Any]:
    """One Bundle of the events of several records, (record, event) pairs as a query returns,
    each record's AuditEvents as :func:`to_fhir` makes them."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record, event in events:
        grouped.setdefault(record, []).append(event)
    bundles = [to_fhir(record, rows, source, release) for record, rows in grouped.items()]
    if not bundles:
        return to_fhir("query", [], source, release)
    return {**bundles[0], "entry": [e for b in bundles for e in b.get("entry", [])]}


def to_fhir_json_of(
    events: list[tuple[str, dict[str, Any]]], source: Source, release: Release = "R4"
) -> str:
    return json.dumps(to_fhir_of(events, source, release), indent=2) + "\n"


def _models(release: Release) -> tuple[Any, Any]:
    """The AuditEvent and Bundle models of ``release`` (loaded only for an export)."""
    if release == "R4":
        from fhir.resources.R4B.auditevent import AuditEvent as R4Event
        from fhir.resources.R4B.bundle import Bundle as R4Bundle

        return R4Event, R4Bundle
    if release == "R5":
        from fhir.resources.auditevent import AuditEvent
        from fhir.resources.bundle import Bundle

        return AuditEvent, Bundle
    raise InvalidInput(f"FHIR release must be one of {', '.join(RELEASES)}, not {release!r}")


def _as_r5(r4: dict[str, Any]) -> dict[str, Any]:
    """An R4 AuditEvent of :func:`_audit_event` in R5's shape, carrying the same codes."""
    outcome = r4["outcome"]
    resource: dict[str, Any] = {
        "category": [{"coding": [r4["type"]]}],
        "code": {"coding": r4.get("subtype") or [r4["type"]]},
        "action": r4["action"],
        "recorded": r4["recorded"],
        "outcome": {
            "code": {"system": _OUTCOME, "code": outcome, "display": _OUTCOME_MEANING[outcome]}
        },
        "agent": [{"who": a["who"], "requestor": a["requestor"]} for a in r4["agent"]],
        "source": {
            "site": {"display": r4["source"]["site"]},
            "observer": r4["source"]["observer"],
            "type": [{"coding": [coding]} for coding in r4["source"]["type"]],
        },
        "entity": [_entity_r5(entity) for entity in r4["entity"]],
    }
    if "outcomeDesc" in r4:
        resource["outcome"]["detail"] = [{"text": r4["outcomeDesc"]}]
    return resource


def _entity_r5(r4: dict[str, Any]) -> dict[str, Any]:
    return {
        "what": {**r4["what"], "display": r4["name"]},
        "role": {"coding": [r4["role"]]},
        "detail": [
            {"type": {"text": d["type"]}, "valueString": d["valueString"]} for d in r4["detail"]
        ],
    }


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
