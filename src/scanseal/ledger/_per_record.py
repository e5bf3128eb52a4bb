"""The per-record writer, the paper's design: one transaction per image and per access.

Nothing waits for a batch, so there is nothing to anchor, prove or keep pending; the batch
operations refuse as they would on a ledger that is not the operator of a batched log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.ledger._batch import Entry
from scanseal.ledger._contract import Contract
from scanseal.ledger._mirror import AccessMirror
from scanseal.ledger.models import (
    AccessResult,
    AccessType,
    AnchorInfo,
    AuditEntry,
    BatchProof,
    Reason,
    Receipt,
    RecordInput,
    record_id,
)

TRANSACTION_WINDOW = 32
"""Transactions kept in flight by store: enough to hide the round trips, few enough that a
node's pool never backs up (anvil slows sharply with hundreds of pending transactions)."""


class PerRecordWriter:
    """Records and access events as ImageRegistry transactions."""

    def __init__(self, contract: Contract, mirror: AccessMirror) -> None:
        self._contract = contract
        self._mirror = mirror

    @property
    def pending(self) -> int:
        """Nothing is ever waiting for an anchor."""
        return 0

    def store(self, uploader: LocalAccount, items: Sequence[RecordInput]) -> list[Receipt]:
        """One storeImage transaction each, a window of them in flight instead of waiting for
        each receipt, as a busy gateway would. A refusal raises after the transactions already
        sent have settled or failed."""
        receipts: list[Receipt] = []
        in_flight: deque[tuple[dict[str, Any], str, bytes]] = deque()
        for item in items:
            args = self._contract.store_args(uploader, item)
            tx, tx_hash = self._contract.send(uploader, "storeImage", args)
            in_flight.append((tx, tx_hash, record_id(item.cid)))
            if len(in_flight) >= TRANSACTION_WINDOW:
                receipts.append(self._settle(uploader, *in_flight.popleft()))
        while in_flight:
            receipts.append(self._settle(uploader, *in_flight.popleft()))
        return receipts

    def _settle(
        self, uploader: LocalAccount, tx: dict[str, Any], tx_hash: str, rid: bytes
    ) -> Receipt:
        return self._contract.settle(uploader, tx, tx_hash, rid, "store record")

    def log_access(
        self,
        reporter: LocalAccount,
        rid: bytes,
        accessor: str,
        kind: AccessType,
        reason: Reason,
        via: bytes | None = None,
    ) -> AccessResult:
        """A logAccess transaction (``logAccessVia`` when the access goes through the record
        ``via``, a study holding it); the contract decides and its AccessAttempt event says so."""
        args = [accessor, int(kind), int(reason)]
        function = "logAccess" if via is None else "logAccessVia"
        if via is not None:
            args = [via, *args]
        receipt, events = self._contract.transact_events(
            reporter, function, rid, args, "log access"
        )
        for name, fields in events:
            if name == "AccessAttempt":
                return AccessResult(bool(fields["allowed"]), int(fields["reason"]), receipt)
        raise IntegrityError("logAccess emitted no AccessAttempt event")

    def may_access(self, rid: bytes, account: str) -> bool:
        """The contract's hasAccess, answered from its mirrored grant table."""
        return self._mirror.has_access(rid, account)

    def batched_record(self, rid: bytes) -> Entry | None:
        """No record lives outside the chain."""
        return None

    def log_index(self, rid: bytes) -> int | None:
        """No record has a log index."""
        return None

    def trail(self, rid: bytes) -> list[AuditEntry]:
        """Every audit entry is an event on chain."""
        return []

    def forget_uploader(self, address: str) -> None:
        """The contract checks uploaders itself; nothing is cached."""

    def anchor(self) -> AnchorInfo | None:
        """Refused: there is no log to anchor."""
        raise InvalidInput("this ledger is not the operator of a batched log")

    def tick(self) -> AnchorInfo | None:
        """Nothing to anchor, ever."""
        return None

    def anchoring(self) -> tuple[float | None, float | None, int]:
        """Nothing waits and nothing is anchored."""
        return None, None, 0

    def prove(self, index: int) -> BatchProof:
        """Refused: there is no log to prove against."""
        raise InvalidInput("this ledger is not in batched mode")

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Refused: there is no log to prove against."""
        raise InvalidInput("this ledger is not in batched mode")

    def close(self) -> None:
        """Nothing of its own to close."""
