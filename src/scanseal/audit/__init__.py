"""The audit trail for people and for hospital audit repositories (docs/AUDIT.md).

Takes a record's trail in the JSON form the ledger and the gateway share (``AuditEntry.to_dict``)
and presents it: names from members' cards beside addresses, JSON entries, tables and CSV, FHIR
R4 AuditEvent Bundles, DICOM PS3.15 A.5 audit messages, and RFC 5424 syslog over TLS (RFC 5425)
to an ATNA audit record repository; and the filters of an audit query across records.
"""

from __future__ import annotations

from typing import Any

from scanseal.audit._dicom import (
    audit_message,
    to_dicom_xml,
    to_dicom_xml_of,
    validate_dicom_xml,
)
from scanseal.audit._fhir import (
    RELEASES,
    Release,
    Source,
    to_fhir,
    to_fhir_json,
    to_fhir_json_of,
    to_fhir_of,
)
from scanseal.audit._names import name_of, names_from_cards, with_names
from scanseal.audit._present import (
    TABLE_COLUMNS,
    entries,
    table_rows,
    to_csv,
    to_csv_of,
    to_json,
)
from scanseal.audit._query import QueryOptions, query_time
from scanseal.audit._syslog import AuditConfig, octet_counted, send_messages, syslog_message

__all__ = [
    "RELEASES",
    "TABLE_COLUMNS",
    "AuditConfig",
    "QueryOptions",
    "Release",
    "Source",
    "audit_message",
    "entries",
    "name_of",
    "names_from_cards",
    "octet_counted",
    "query_time",
    "send_audit",
    "send_messages",
    "syslog_message",
    "table_rows",
    "to_csv",
    "to_csv_of",
    "to_dicom_xml",
    "to_dicom_xml_of",
    "to_fhir",
    "to_fhir_json",
    "to_fhir_json_of",
    "to_fhir_of",
    "to_json",
    "validate_dicom_xml",
    "with_names",
]


def send_audit(
    config: AuditConfig, record: str, events: list[dict[str, Any]], source: Source
) -> int:
    """Send each event's DICOM audit message to the configured repository; how many."""
    from lxml import etree

    payloads = []
    for event in events:
        message = etree.tostring(audit_message(record, event, source), encoding="UTF-8")
        validate_dicom_xml(message)
        payloads.append(message)
    return send_messages(config, payloads)
