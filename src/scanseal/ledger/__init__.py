"""The ledger: ImageRegistry on an EVM, per-record or Merkle-batched (see docs/LEDGER.md)."""

from __future__ import annotations

from scanseal.ledger._batch import Entry
from scanseal.ledger._evidence import (
    PROOF_FORMAT,
    ChainReader,
    ProofFile,
    check_anchor,
    export_proof,
    export_record_proof,
    open_reader,
    verify_evidence,
)
from scanseal.ledger._per_record import TRANSACTION_WINDOW
from scanseal.ledger._rpc import READ_METHODS, serve_rpc
from scanseal.ledger._txview import describe_transaction
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
    "PROOF_FORMAT",
    "READ_METHODS",
    "TRANSACTION_WINDOW",
    "AccessLogEntry",
    "AccessResult",
    "AccessType",
    "AnchorInfo",
    "AuditEntry",
    "BatchProof",
    "ChainReader",
    "Entry",
    "GrantState",
    "Ledger",
    "LedgerConfig",
    "LedgerStatus",
    "ProofFile",
    "Reason",
    "Receipt",
    "Record",
    "RecordInput",
    "check_anchor",
    "check_proof",
    "describe_transaction",
    "export_proof",
    "export_record_proof",
    "open_reader",
    "record_id",
    "serve_rpc",
    "utc_iso",
    "verify_evidence",
]
