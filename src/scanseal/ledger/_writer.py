"""The interface of the ledger's two writers, which the facade picks between once, at open."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eth_account.signers.local import LocalAccount

from scanseal.ledger._batch import Entry
from scanseal.ledger.models import (
    AccessResult,
    AccessType,
    AnchorInfo,
    AuditEntry,
    BatchProof,
    Reason,
    Receipt,
    RecordInput,
)


class Writer(Protocol):
    """Where records and access events go, chosen once when the ledger opens: transactions
    (`PerRecordWriter`) or the operator's batched log (`BatchedWriter`)."""

    @property
    def pending(self) -> int: ...

    def store(self, uploader: LocalAccount, items: Sequence[RecordInput]) -> list[Receipt]: ...

    def log_access(
        self,
        reporter: LocalAccount,
        rid: bytes,
        accessor: str,
        kind: AccessType,
        reason: Reason,
        via: bytes | None = None,
    ) -> AccessResult: ...

    def may_access(self, rid: bytes, account: str) -> bool: ...

    def batched_record(self, rid: bytes) -> Entry | None: ...

    def log_index(self, rid: bytes) -> int | None: ...

    def trail(self, rid: bytes) -> list[AuditEntry]: ...

    def forget_uploader(self, address: str) -> None: ...

    def anchor(self) -> AnchorInfo | None: ...

    def tick(self) -> AnchorInfo | None: ...

    def anchoring(self) -> tuple[float | None, float | None, int]: ...

    def prove(self, index: int) -> BatchProof: ...

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...

    def close(self) -> None: ...
