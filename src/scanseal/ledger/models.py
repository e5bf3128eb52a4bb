"""Plain values the ledger takes and hands out: record inputs and their key, records, receipts,
access results, audit entries, proofs."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from eth_utils.crypto import keccak

from scanseal.errors import InvalidInput

Mode = Literal["per-record", "batched"]


class AccessType(enum.IntEnum):
    """What an accessor tried to do with a record (stored as uint8 on chain; the contract
    keeps any value). GRANT, REVOKE and AUDIT mark refused attempts to grant, revoke or read
    the audit trail, which the gateway reports with the access log because the contract has no
    other event for a refusal; the audit shows them as what they were, not as reads."""

    VIEW = 0
    DOWNLOAD = 1
    VERIFY = 2
    GRANT = 3
    REVOKE = 4
    AUDIT = 5


class GrantState(enum.IntEnum):
    """The contract's ``grantOf(recordId, account)``."""

    NEVER = 0
    ACTIVE = 1
    REVOKED = 2


FIRST_REPORTER = 16
"""The first reason code a reporter may pass (the contract's FIRST_REPORTER_REASON)."""


class Reason(enum.IntEnum):
    """Why an access attempt was denied. Codes below 16 are assigned by the contract itself;
    codes from 16 up (`FIRST_REPORTER`) are reported by a gateway for failures the chain cannot
    see; a reporter may pass only those or NONE."""

    NONE = 0
    NO_GRANT = 1
    REVOKED = 2
    BAD_SIGNATURE = 16
    REPLAY = 17
    INTEGRITY = 18
    NOT_PERMITTED = 19
    OTHER = 255

    @classmethod
    def check_reported(cls, code: int) -> None:
        """Refuse a reporter's code that is the contract's own (1 to 15): only the contract
        says "no grant" or "revoked"."""
        if 0 < code < FIRST_REPORTER:
            raise InvalidInput(f"reason {code} is the contract's own; reporters use 0 or >= 16")

    @classmethod
    def label(cls, code: int) -> str:
        """A readable name even for codes this version does not know."""
        try:
            return cls(code).name.lower().replace("_", "-")
        except ValueError:
            return f"code-{code}"


@dataclass(frozen=True)
class RecordInput:
    """What an uploader commits for one image."""

    cid: bytes
    image_hash: bytes
    h3: bytes
    pixel_digest: bytes


@functools.lru_cache(maxsize=4096)
def record_id(cid: bytes) -> bytes:
    """The contract's key for a record: keccak256 of the binary manifest CID (recent ones
    kept: a gateway derives the same key on every fetch of a record)."""
    return keccak(cid)


@dataclass(frozen=True)
class Record:
    """An image's entry: the manifest CID (binary) and the hashes a recipient checks."""

    record_id: bytes
    cid: bytes
    image_hash: bytes
    h3: bytes
    pixel_digest: bytes
    uploader: str
    timestamp: int
    source: Literal["chain", "batch"]


@dataclass(frozen=True)
class Receipt:
    """Evidence that a record or access event was committed.

    Per-record mode: the transaction hash. Batched mode: the entry's index in the operator's log;
    its inclusion proof comes from `Ledger.prove(index)` once the entry is anchored.
    """

    record_id: bytes
    mode: Mode
    tx_hash: str | None = None
    block_number: int | None = None
    gas_used: int | None = None
    log_index: int | None = None


@dataclass(frozen=True)
class AccessResult:
    """The decision the contract recorded for one access attempt."""

    allowed: bool
    reason: int
    receipt: Receipt


@dataclass(frozen=True)
class AccessLogEntry:
    """One element of the contract's AccessLog array (the paper's structure)."""

    accessor: str
    access_time: int
    access_type: int
    authorized: bool
    reason: int
    reporter: str
    """Who reported the attempt: a gateway or admin, or the accessor itself."""


@dataclass(frozen=True)
class AnchorInfo:
    """One root published on chain by a log operator."""

    operator: str
    index: int
    root: bytes
    size: int
    timestamp: int
    tx_hash: str | None = None
    gas_used: int | None = None


@dataclass(frozen=True)
class LedgerStatus:
    """What an operator watches on the ledger, known without asking the chain
    (:meth:`~scanseal.ledger.Ledger.status`)."""

    mode: str
    pending: int
    """Batched entries not anchored yet (0 in per-record mode)."""
    oldest_pending_seconds: float | None
    """How long the oldest of them has waited; None when nothing waits."""
    since_anchor_seconds: float | None
    """Seconds since the operator's last anchor; None before the first (or per-record)."""
    anchors: int
    """Roots the operator has anchored."""
    transaction_failures: int
    """Transactions refused, reverted or unanswered since the ledger opened."""
    batch_seconds: float | None
    """How long an entry may wait before its batch is anchored (None in per-record mode)."""


@dataclass(frozen=True)
class BatchProof:
    """Everything needed to check, offline, that an entry is in an anchored log.

    `entry` is the encoded leaf data; its leaf hash, `index`, `size` and `path` lead to `root`,
    which must equal the root the contract stores as anchor `anchor_index` of `operator`.
    """

    operator: str
    anchor_index: int
    index: int
    size: int
    root: bytes
    entry: bytes
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly form (hex strings) for receipts and audit exports."""
        return {
            "operator": self.operator,
            "anchor_index": self.anchor_index,
            "index": self.index,
            "size": self.size,
            "root": "0x" + self.root.hex(),
            "entry": "0x" + self.entry.hex(),
            "path": ["0x" + node.hex() for node in self.path],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BatchProof:
        """Inverse of `to_json`."""
        return cls(
            operator=str(raw["operator"]),
            anchor_index=int(raw["anchor_index"]),
            index=int(raw["index"]),
            size=int(raw["size"]),
            root=bytes.fromhex(str(raw["root"]).removeprefix("0x")),
            entry=bytes.fromhex(str(raw["entry"]).removeprefix("0x")),
            path=tuple(bytes.fromhex(str(p).removeprefix("0x")) for p in raw["path"]),
        )


def utc_iso(stamp: int) -> str:
    """A Unix time as ISO 8601 UTC with its zone, to the second: ``2026-12-03T10:00:00Z``."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


AuditAction = Literal["stored", "granted", "revoked", "access", "admin"]
Outcome = Literal["success", "denied", "unauthenticated"]
UNAUTHENTICATED_REASONS = frozenset({Reason.label(Reason.BAD_SIGNATURE)})
"""Denial reasons that mean the request's signature did not verify for the identity it claims:
the claimed subject is not who made the attempt."""


@dataclass(frozen=True)
class AuditEntry:
    """One line of a record's audit trail: who did what, when, and the evidence for it.

    ``actor`` is the account that wrote the event (the uploader, the granting controller or
    admin, or the reporter of an access attempt); ``subject`` is whom it concerns (the grantee,
    or the accessor of an attempt). A refused attempt to grant or revoke carries the action it
    tried with ``allowed`` False. ``position`` is the event's place in chain order (block, 0
    for a chain event or 1 for a batched entry, index), None for a batched entry from a log
    written before positions were kept."""

    timestamp: int
    action: AuditAction
    actor: str
    subject: str | None = None
    access_type: str | None = None
    allowed: bool | None = None
    reason: str | None = None
    tx_hash: str | None = None
    proof: BatchProof | None = field(default=None, compare=False)
    source: Literal["chain", "batch"] = "chain"
    detail: str | None = None
    position: tuple[int, int, int] | None = field(default=None, compare=False)

    @property
    def outcome(self) -> Outcome:
        """``success``, ``denied``, or ``unauthenticated`` for a denial whose signature did
        not verify for the identity it claimed."""
        if self.allowed is None or self.allowed:
            return "success"
        return "unauthenticated" if self.reason in UNAUTHENTICATED_REASONS else "denied"

    @property
    def subject_verified(self) -> bool | None:
        """Whether the subject is authenticated: False for an attempt that only claimed it."""
        if self.subject is None:
            return None
        return self.outcome != "unauthenticated"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form shared by ``scanseal audit --format json`` and the gateway's audit
        route (``timestamp`` in Unix seconds for older clients, ``time`` in ISO 8601 UTC)."""
        return {
            "timestamp": self.timestamp,
            "time": utc_iso(self.timestamp),
            "action": self.action,
            "outcome": self.outcome,
            "actor": self.actor,
            "subject": self.subject,
            "subject_verified": self.subject_verified,
            "access_type": self.access_type,
            "allowed": self.allowed,
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "tx_hash": self.tx_hash,
            "proof": self.proof.to_json() if self.proof is not None else None,
            "evidence": self.evidence(),
        }

    def evidence(self) -> str:
        """The transaction hash, or where the inclusion proof leads (or 'pending')."""
        if self.tx_hash:
            return self.tx_hash
        if self.proof is not None:
            return f"leaf {self.proof.index}/{self.proof.size} of anchor #{self.proof.anchor_index}"
        return "pending anchor"
