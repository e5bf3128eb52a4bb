"""The audit page's search: the filters of the form, sent as the gateway's signed audit query.

The gateway answers ``POST /v1/audit`` (``GatewayClient.audit_page``) by actor, record,
action, outcome and time, one page at a time with a cursor; what only a recipient can know —
which records are a study's, or a patient's — is resolved here from the user's catalogue
(``transfer.catalogue``, as ``scanseal audit --study/--patient`` does) into the records the
query names. Days on the form are UTC days: ``since`` from its first second, ``until`` to its
last. An export runs the same query over every page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from itertools import islice
from typing import Any, Final

from scanseal import audit
from scanseal.errors import InvalidInput, NotFound
from scanseal.storage import CID
from scanseal.transfer.catalogue import Described

PAGE_SIZE: Final = 100
"""Events per page on the audit page."""
EXPORT_PAGE: Final = 500
"""Events asked for per page while exporting (the gateway's most)."""
MAX_EXPORT: Final = 20000
"""The most events one export writes; a larger query is refused, to be narrowed."""
ACTIONS: Final = ("stored", "granted", "revoked", "access", "admin")
OUTCOMES: Final = ("success", "denied", "unauthenticated")
EXPORTS: Final = {
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "fhir": ("application/fhir+json", "fhir.json"),
    "dicom": ("application/xml", "dicom.xml"),
}


@dataclass(frozen=True)
class Search:
    """The audit form's filters, each "" when not given."""

    actor: str = ""
    patient: str = ""
    study: str = ""
    record: str = ""
    action: str = ""
    outcome: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Search:
        """The filters of a request's query string, checked (InvalidInput naming the first
        that is wrong)."""
        chosen = {f.name: params.get(f.name, "").strip() for f in fields(cls)}
        if chosen["record"]:
            CID.parse(chosen["record"])
        if chosen["action"] not in ("", *ACTIONS):
            raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}")
        if chosen["outcome"] not in ("", *OUTCOMES):
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
        for key in ("since", "until"):
            if chosen[key]:
                try:
                    chosen[key] = date.fromisoformat(chosen[key]).isoformat()
                except ValueError:
                    raise InvalidInput(f"{key} must be a day as YYYY-MM-DD") from None
        return cls(**chosen)

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def query(self, records: list[str] | None) -> dict[str, Any]:
        """The body of the gateway's audit query for these filters (None: left out)."""
        return {
            "records": records,
            "identity": self.actor or None,
            "action": self.action or None,
            "outcome": self.outcome or None,
            "since": f"{self.since}T00:00:00Z" if self.since else None,
            "until": f"{self.until}T23:59:59Z" if self.until else None,
        }


def records_of(search: Search, described: list[Described]) -> list[str] | None:
    """The records the query is limited to: the record, the study's and the patient's (Patient
    ID or name) among ``described`` — all that are given, together; None for no such limit.
    NotFound when the filters given leave no record (a query naming none would name all)."""
    chosen: list[str] | None = [search.record] if search.record else None
    for wanted, matches in (
        (search.study, lambda d: d.study == search.study),
        (search.patient, lambda d: search.patient in (d.patient_id, d.patient_name)),
    ):
        if not wanted:
            continue
        found = [d.record for d in described if matches(d)]
        chosen = found if chosen is None else [r for r in chosen if r in found]
    if chosen == []:
        given = ", ".join(k for k in ("record", "study", "patient") if getattr(search, k))
        raise NotFound(f"no record shared with you matches the {given} given")
    return chosen


def collect(found: Any) -> list[dict[str, Any]]:
    """Every event of an export's query (an iterator of events), MAX_EXPORT at most."""
    events = list(islice(found, MAX_EXPORT + 1))
    if len(events) > MAX_EXPORT:
        raise InvalidInput(f"the query matches more than {MAX_EXPORT} events: narrow it")
    return events


def export_text(
    format_: str, events: list[dict[str, Any]], names: dict[str, str], source: audit.Source
) -> str:
    """A query's events as ``scanseal audit --format`` writes them, each with its record:
    a column of JSON and CSV, the participant object of FHIR and DICOM (its recordId for a
    record of another gateway, the registry for an administrative change)."""
    rows = audit.entries(events, names)
    owners = [str(e.get("record") or e.get("record_id") or "registry") for e in events]
    pairs = list(zip(owners, rows, strict=True))
    if format_ == "json":
        merged = [{"record": e.get("record"), **row} for e, row in zip(events, rows, strict=True)]
        return audit.to_json(merged)
    if format_ == "csv":
        return audit.to_csv_of(pairs)
    if format_ == "fhir":
        return audit.to_fhir_json_of(pairs, source)
    if format_ == "dicom":
        return audit.to_dicom_xml_of(pairs, source)
    raise InvalidInput(f"format must be one of {', '.join(EXPORTS)}")
