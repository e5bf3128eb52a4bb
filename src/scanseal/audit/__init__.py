"""The audit trail for people and for hospital audit repositories (docs/AUDIT.md).

Takes a record's trail in the JSON form the ledger and the gateway share (``AuditEntry.to_dict``)
and presents it: names from members' cards beside addresses, JSON entries, tables and CSV, FHIR
R4 AuditEvent Bundles, DICOM PS3.15 A.5 audit messages, and RFC 5424 syslog over TLS (RFC 5425)
to an ATNA audit record repository.
"""

from __future__ import annotations

from scanseal.audit._dicom import audit_message, to_dicom_xml, validate_dicom_xml
from scanseal.audit._fhir import Source, to_fhir, to_fhir_json
from scanseal.audit._names import name_of, names_from_cards, with_names
from scanseal.audit._present import TABLE_COLUMNS, entries, table_rows, to_csv, to_json

__all__ = [
    "TABLE_COLUMNS",
    "Source",
    "audit_message",
    "entries",
    "name_of",
    "names_from_cards",
    "table_rows",
    "to_csv",
    "to_dicom_xml",
    "to_fhir",
    "to_fhir_json",
    "to_json",
    "validate_dicom_xml",
    "with_names",
]
