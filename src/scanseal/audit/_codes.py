"""What each trail event is in the vocabularies hospital audit repositories use: the DICOM
(DCM) event IDs and event type codes of PS3.15 A.5 / PS3.16, the event action code, and the
outcome indicator (0 success, 4 minor failure: a refusal, 8 serious failure: a request whose
signature did not verify). FHIR AuditEvent takes the same DCM codes (``_fhir``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

DCM: Final = "DCM"
DCM_SYSTEM: Final = "http://dicom.nema.org/resources/ontology/DCM"


@dataclass(frozen=True)
class Code:
    """One coded value: its code, and the meaning its coding scheme gives it."""

    code: str
    meaning: str


IMPORT: Final = Code("110107", "Import")
EXPORT: Final = Code("110106", "Export")
INSTANCES_ACCESSED: Final = Code("110103", "DICOM Instances Accessed")
PATIENT_RECORD: Final = Code("110110", "Patient Record")
SECURITY_ALERT: Final = Code("110113", "Security Alert")
AUDIT_LOG_USED: Final = Code("110101", "Audit Log Used")
OBJECT_SECURITY_CHANGED: Final = Code("110135", "Object Security Attributes Changed")
ROLES_CHANGED: Final = Code("110136", "Security Roles Changed")
USER_ATTRIBUTES_CHANGED: Final = Code("110137", "User Security Attributes Changed")
RESTRICTED_FUNCTION: Final = Code("110132", "Use of Restricted Function")
SOURCE_ROLE: Final = Code("110153", "Source Role ID")
DESTINATION_ROLE: Final = Code("110152", "Destination Role ID")

Action = Literal["C", "R", "U", "D", "E"]
OUTCOMES: Final = {"success": 0, "denied": 4, "unauthenticated": 8}


@dataclass(frozen=True)
class Classified:
    """A trail event as an audit message classifies it."""

    event_id: Code
    event_type: Code | None
    action: Action
    outcome: int


def classify(event: dict[str, Any]) -> Classified:
    """The DCM classification of one presented trail event (``audit.entries`` form).

    stored: Import (a sealed record came in); access: DICOM Instances Accessed, or Export when
    the bundle was released (an allowed download); a read of the trail: Audit Log Used; grant,
    revocation and a change of controller: Security Alert, Object Security Attributes Changed;
    ownership, admins and uploaders: Security Roles Changed; identities: User Security
    Attributes Changed.
    A refused attempt keeps its event and says so in the outcome; one whose signature did not
    verify is a Security Alert, Use of Restricted Function, whatever it attempted."""
    outcome = OUTCOMES.get(str(event.get("outcome")), 4)
    action, access = str(event.get("action")), event.get("access_type")
    if outcome == 8:
        return Classified(SECURITY_ALERT, RESTRICTED_FUNCTION, "E", outcome)
    if action == "stored":
        return Classified(IMPORT, None, "C", outcome)
    if action == "admin":
        return Classified(SECURITY_ALERT, _admin_type(str(event.get("detail") or "")), "U", outcome)
    if action in ("granted", "revoked"):
        return Classified(SECURITY_ALERT, OBJECT_SECURITY_CHANGED, "U", outcome)
    if access == "audit":
        return Classified(AUDIT_LOG_USED, None, "R", outcome)
    if access == "download" and outcome == 0:
        return Classified(EXPORT, None, "R", outcome)
    return Classified(INSTANCES_ACCESSED, None, "R", outcome)


def _admin_type(detail: str) -> Code:
    """A record's controller is the object's security; an identity is the user's; ownership,
    admins and uploaders are roles."""
    if detail.startswith("controller"):
        return OBJECT_SECURITY_CHANGED
    if detail.startswith("identity"):
        return USER_ATTRIBUTES_CHANGED
    return ROLES_CHANGED


def object_uri(subject: str) -> str:
    """The audited object as a URI: a record's manifest CID as ``ipfs://CID``; a subject that
    is a URI already (``eip155:1337:0x…``, the registry of an administrative trail) as is."""
    return subject if ":" in subject else f"ipfs://{subject}"


def participant(address: object, name: object) -> str:
    """How an account is named in a message: ``name <address>``, or the address alone."""
    return f"{name} <{address}>" if name else str(address or "unknown")
