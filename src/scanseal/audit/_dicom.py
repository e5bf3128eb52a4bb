"""DICOM PS3.15 A.5 audit messages (the IHE ATNA format) for trail events, as XML, checked
against the RELAX NG schema shipped beside this module (``dicom-audit-message.rng``)."""

from __future__ import annotations

import base64
import functools
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from scanseal.audit._codes import (
    DCM,
    DESTINATION_ROLE,
    SOURCE_ROLE,
    Code,
    classify,
    object_uri,
)
from scanseal.audit._fhir import Source
from scanseal.errors import IntegrityError

if TYPE_CHECKING:
    from lxml import etree

_APPLICATION: Final = Code("110150", "Application")
_RFC3881: Final = "RFC-3881"


def audit_message(record: str, event: dict[str, Any], source: Source) -> etree._Element:
    """One AuditMessage element for one presented trail event."""
    from lxml import etree  # lxml loads only when a message is built

    kind = classify(event)
    message = etree.Element("AuditMessage")
    ident = etree.SubElement(
        message,
        "EventIdentification",
        EventActionCode=kind.action,
        EventDateTime=str(event["time"]),
        EventOutcomeIndicator=str(kind.outcome),
    )
    _coded(ident, "EventID", kind.event_id.code, DCM, kind.event_id.meaning)
    if kind.event_type is not None:
        _coded(ident, "EventTypeCode", kind.event_type.code, DCM, kind.event_type.meaning)
    description = event.get("reason") or event.get("detail")
    if description and description != "none":
        etree.SubElement(ident, "EventOutcomeDescription").text = str(description)
    for participant in _participants(event):
        message.append(participant)
    audit_source = etree.SubElement(
        message, "AuditSourceIdentification", AuditEnterpriseSiteID=source.site,
        AuditSourceID=source.name,
    )  # fmt: skip
    _coded(audit_source, "AuditSourceTypeCode", "4", _RFC3881, "Application Server")
    message.append(_record_object(record, event))
    return message


def to_dicom_xml(record: str, events: list[dict[str, Any]], source: Source) -> str:
    """Every event's AuditMessage in one ``AuditMessages`` document, validated."""
    return to_dicom_xml_of([(record, event) for event in events], source)


def to_dicom_xml_of(events: list[tuple[str, dict[str, Any]]], source: Source) -> str:
    """The same for events of several records: (record, event) pairs, as a query returns."""
    from lxml import etree

    root = etree.Element("AuditMessages")
    for record, event in events:
        root.append(audit_message(record, event, source))
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate_dicom_xml(text)
    return str(text.decode("utf-8"))


def validate_dicom_xml(document: bytes) -> None:
    """Check an AuditMessage (or AuditMessages) document against the schema; IntegrityError
    naming the first problem otherwise."""
    from lxml import etree

    try:
        tree = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise IntegrityError(f"audit message is not XML: {error}") from None
    schema = _schema()
    if not schema.validate(tree):
        raise IntegrityError(
            f"audit message does not match PS3.15 A.5.1: {schema.error_log.last_error}"
        )


@functools.cache
def _schema() -> etree.RelaxNG:
    from lxml import etree

    text = resources.files("scanseal.audit").joinpath("dicom-audit-message.rng").read_bytes()
    return etree.RelaxNG(etree.fromstring(text))


def _coded(parent: etree._Element, tag: str, code: str, system: str, text: str) -> None:
    from lxml import etree

    etree.SubElement(
        parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": text}
    )


def _participants(event: dict[str, Any]) -> list[etree._Element]:
    """The writer of the event and the account it concerns; an identity that was only
    claimed is named as an unverified claim."""
    attempt = event.get("access_type") is not None
    role = _APPLICATION if attempt else SOURCE_ROLE
    found = [_participant(event.get("actor"), event.get("actor_name"), not attempt, role)]
    subject = event.get("subject")
    if subject:
        name = event.get("subject_name")
        if event.get("subject_verified") is False:
            name = f"unverified claim: {event.get('claimed_name') or 'unknown'}"
        found.append(_participant(subject, name, attempt, DESTINATION_ROLE))
    return found


def _participant(address: object, name: object, requestor: bool, role: Code) -> etree._Element:
    from lxml import etree

    element = etree.Element("ActiveParticipant")
    _coded(element, "RoleIDCode", role.code, DCM, role.meaning)
    element.set("UserID", str(address or "unknown"))
    if name:
        element.set("UserName", str(name))
    element.set("UserIsRequestor", "true" if requestor else "false")
    return element


def _record_object(record: str, event: dict[str, Any]) -> etree._Element:
    from lxml import etree

    element = etree.Element(
        "ParticipantObjectIdentification",
        ParticipantObjectID=record,
        ParticipantObjectTypeCode="2",
        ParticipantObjectTypeCodeRole="4",
    )
    _coded(element, "ParticipantObjectIDTypeCode", "12", _RFC3881, "URI")
    etree.SubElement(element, "ParticipantObjectName").text = object_uri(record)
    evidence = str(event.get("evidence") or "").encode("utf-8")
    etree.SubElement(
        element,
        "ParticipantObjectDetail",
        type="evidence",
        value=base64.b64encode(evidence).decode(),
    )
    etree.SubElement(element, "Encrypted").text = "true"
    return element
