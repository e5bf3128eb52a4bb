"""The ledger: ImageRegistry on an EVM, per-record or Merkle-batched (see docs/LEDGER.md)."""

from __future__ import annotations

from scanseal.ledger._batch import Entry
from scanseal.ledger._per_record import TRANSACTION_WINDOW
from scanseal.ledger.config import LedgerConfig
from scanseal.ledger.core import MAX_BATCH_GRANTS, Ledger, check_proof
from scanseal.ledger.models import (
    AccessLogEntry,
    AccessResult,
    AccessType,
    AnchorInfo,
    AuditEntry,
    BatchProof,
    GrantState,
    LedgerStatus,
    Reason,
    Receipt,
    Record,
    RecordInput,
    record_id,
    utc_iso,
)

__all__ = [
    "MAX_BATCH_GRANTS",
    "TRANSACTION_WINDOW",
    "AccessLogEntry",
    "AccessResult",
    "AccessType",
    "AnchorInfo",
    "AuditEntry",
    "BatchProof",
    "Entry",
    "GrantState",
    "Ledger",
    "LedgerConfig",
    "LedgerStatus",
    "Reason",
    "Receipt",
    "Record",
    "RecordInput",
    "check_proof",
    "record_id",
    "utc_iso",
]
