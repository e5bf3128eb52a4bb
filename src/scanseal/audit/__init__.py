"""The audit trail for people and for hospital audit repositories (docs/AUDIT.md).

Takes a record's trail in the JSON form the ledger and the gateway share (``AuditEntry.to_dict``)
and presents it: names from members' cards beside addresses, tables and CSV, FHIR R4 AuditEvent
Bundles, DICOM PS3.15 A.5 audit messages, and RFC 5424 syslog over TLS (RFC 5425) to an ATNA
audit record repository.
"""

from __future__ import annotations

from scanseal.audit._names import name_of, names_from_cards, with_names

__all__ = ["name_of", "names_from_cards", "with_names"]
