"""The inbox page: the studies shared with the user, each expanding to its instance records.

The gateway's inbox names records only; what each is — study, patient, date, modality — is in
its encrypted metadata. The user's catalogue (``transfer.catalogue``, the one ``scanseal
inbox`` keeps) is brought up to date first, fetching each new record once to describe it, and
groups the records by Study Instance UID. Records of no study (PNG and JPEG) and records that
could not be described (refused, altered: the catalogue says why and tries again next time) are
listed after the studies, so nothing shared with the user is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanseal.console._views import Console, Summary
from scanseal.errors import ScanSealError
from scanseal.transfer.catalogue import Described


@dataclass(frozen=True)
class Study:
    """One study as the inbox lists it (``transfer.catalogue`` summary), with its records."""

    uid: str
    patient: str | None
    patient_id: str | None
    date: str | None
    modalities: list[str]
    senders: list[str]
    warnings: list[str]
    records: list[Described]
    study_records: list[str]
    """The user's own study records of this study (the CIDs ``scanseal send`` printed, which
    grant, revoke, fetch and audit take for the whole study); none for a study others sent."""


@dataclass(frozen=True)
class Loose:
    """A record of no study (``summary``), or one the catalogue could not describe (``problem``)."""

    record: str
    summary: Summary | None
    problem: str | None


@dataclass(frozen=True)
class Inbox:
    studies: list[Study]
    loose: list[Loose]


def inbox_of(console: Console) -> Inbox:
    """The studies shared with the console's identity, newest first, then the other records."""
    catalogued = console.catalogued()
    by_record = {entry.record: entry for entry in catalogued.records}
    studies, loose = [], []
    for summary in reversed(catalogued.studies):
        if summary["study"] is None:
            loose += [Loose(r, console.summary(r), None) for r in reversed(summary["records"])]
            continue
        studies.append(_study(console, summary, [by_record[r] for r in summary["records"]]))
    loose += [Loose(record, None, problem.reason) for record, problem in catalogued.problems]
    return Inbox(studies, loose)


def _study(console: Console, summary: dict[str, Any], records: list[Described]) -> Study:
    senders = sorted({console.names.get(r.sender_address) or r.sender for r in records})
    return Study(
        uid=str(summary["study"]),
        patient=summary["patient_name"] or summary["patient_id"],
        patient_id=summary["patient_id"],
        date=summary["study_datetime"],
        modalities=list(summary["modalities"]),
        senders=senders,
        warnings=list(summary["warnings"]),
        records=records,
        study_records=_own_study_records(console, str(summary["study"]), records),
    )


def _own_study_records(console: Console, uid: str, records: list[Described]) -> list[str]:
    """The study records the user registered for ``uid`` (asked only when the user sent one
    of its instances); none when the gateway cannot say, so the page still renders."""
    me = console.client.identity.address if console.client.identity else None
    if me is None or all(r.sender_address != me for r in records):
        return []
    try:
        return [str(entry["study"]) for entry in console.client.studies_of(uid)]
    except ScanSealError:
        return []
