"""The batched writer: the operator's RFC 6962 log of records and access events, and its roots.

Records and access events are appended to the log file and only its root is published, every
`batch_size` entries or `batch_seconds` seconds; the contract checks that each new root
extends the previous one. The chain is the only authority on what is anchored: on opening, the
log must hold at least the anchored entries and match the anchored root, and entries appended
before a crash are anchored then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from scanseal._address import checksum
from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound, ScanSealError
from scanseal.integrity.merkle import empty_root
from scanseal.ledger import _audit
from scanseal.ledger._batch import BatchLog, Entry
from scanseal.ledger._contract import Contract
from scanseal.ledger._mirror import AccessMirror
from scanseal.ledger.config import LedgerConfig
from scanseal.ledger.models import (
    AccessResult,
    AccessType,
    AnchorInfo,
    AuditEntry,
    BatchProof,
    GrantState,
    Reason,
    Receipt,
    RecordInput,
    record_id,
)

_UPLOADER_CACHE_SECONDS = 5.0
_log = logging.getLogger("scanseal.ledger")


class BatchedWriter:
    """The batched log of one operator: written with its account, read and proven with only
    its address."""

    def __init__(
        self,
        contract: Contract,
        mirror: AccessMirror,
        config: LedgerConfig,
        operator: LocalAccount | None,
    ) -> None:
        if operator is not None:
            address: str | None = operator.address
        else:
            address = to_checksum_address(config.operator) if config.operator else None
        if address is None:
            raise InvalidInput("batched mode needs the operator: its account, or its address")
        self._contract = contract
        self._mirror = mirror
        self._config = config
        self._operator = operator
        self._operator_address = address
        self._uploaders: dict[str, float] = {}
        self._anchor_count = 0
        self._anchored_size = 0
        self._anchored_root = empty_root()
        self._first_pending: float | None = None
        self._anchored_at: float | None = None  # time.time() of the latest anchor
        self._lock = threading.RLock()  # one writer at a time on the log and its anchors
        self.log = BatchLog(
            Path(config.state_dir) / f"batch-{address}.jsonl",
            durable=config.durable,
            read_only=operator is None,  # only the operator appends
        )
        self._check_log()

    def _check_log(self) -> None:
        """Refuse a log that is not what the chain anchored; anchor what a crash left pending."""
        path = self.log.path
        self._sync_anchors()
        if self.log.size < self._anchored_size:
            raise IntegrityError(
                f"{path} holds {self.log.size} entries but {self._anchored_size} are anchored"
            )
        if self.log.tree.root(self._anchored_size) != self._anchored_root:
            raise IntegrityError(f"{path} does not match the root anchored on chain")
        if self.pending and self._operator is not None:
            self.anchor()  # entries that were appended before a crash

    def _sync_anchors(self) -> None:
        """Take the operator's latest anchor from the chain, the only authority on it."""
        self._anchor_count = self._contract.anchor_count(self._operator_address)
        if self._anchor_count:
            latest = self._contract.get_anchor(self._operator_address, self._anchor_count - 1)
            self._anchored_size, self._anchored_root = latest.size, latest.root
            self._anchored_at = float(latest.timestamp)

    @property
    def pending(self) -> int:
        """Entries appended to the log but not anchored yet."""
        return self.log.size - self._anchored_size

    # ------------------------------------------------------------ writing

    def store(self, uploader: LocalAccount, items: Sequence[RecordInput]) -> list[Receipt]:
        """Append one record entry each; a record already in the log or stored on chain is
        refused (a batch entry and a chain record for one CID would contradict each other)."""
        with self._lock:
            operator = self._signer()
            self._require_uploader(uploader.address)
            on_chain = self._mirror.stored_among(record_id(item.cid) for item in items)
            if on_chain:
                raise InvalidInput(f"record 0x{on_chain[0].hex()[:16]}… is already stored on chain")
            receipts = []
            for item in items:
                rid = record_id(item.cid)
                if self.batched_record(rid) is not None:
                    raise InvalidInput(f"record 0x{rid.hex()[:16]}… is already in the batched log")
                entry = Entry(
                    "record",
                    rid,
                    uploader.address,
                    int(time.time()),
                    operator.address,
                    cid=item.cid,
                    image_hash=item.image_hash,
                    h3=item.h3,
                    pixel_digest=item.pixel_digest,
                )
                index = self.log.append(entry, self._mirror.head_number(check=False))
                receipts.append(Receipt(rid, "batched", log_index=index))
                self._after_append()
            return receipts

    def log_access(
        self,
        reporter: LocalAccount,
        rid: bytes,
        accessor: str,
        kind: AccessType,
        reason: Reason,
        via: bytes | None = None,
    ) -> AccessResult:
        """Append an access entry, decided by the grant table on chain (on `rid`, or on `via`,
        a study record holding it, as ``logAccessVia`` decides); only the operator reports,
        and a nonzero `reason` forces a denial."""
        with self._lock:
            operator = self._signer()
            if reporter.address != operator.address:
                raise AccessDenied(f"{reporter.address} is not the operator of this batched log")
            code = int(reason)
            allowed = False
            if code == Reason.NONE:
                decided = [rid] if via is None else [rid, via]
                allowed = any(self.may_access(r, accessor) for r in decided)
                if not allowed:
                    revoked = any(
                        self._mirror.grant_of(r, accessor) == GrantState.REVOKED for r in decided
                    )
                    code = int(Reason.REVOKED if revoked else Reason.NO_GRANT)
            entry = Entry(
                "access",
                rid,
                checksum(accessor),
                int(time.time()),
                operator.address,
                access_type=int(kind),
                allowed=allowed,
                reason=code,
            )
            head = self._mirror.head_number(check=int(reason) != Reason.NONE)
            index = self.log.append(entry, head)
            self._after_append()
            return AccessResult(allowed, code, Receipt(rid, "batched", log_index=index))

    def forget_uploader(self, address: str) -> None:
        """Drop a cached uploader check (the account was just deauthorized)."""
        self._uploaders.pop(address, None)

    def _signer(self) -> LocalAccount:
        if self._operator is None:
            raise InvalidInput("this ledger is not the operator of a batched log")
        return self._operator

    def _after_append(self) -> None:
        if self._first_pending is None:
            self._first_pending = time.monotonic()
        if self.pending >= self._config.batch_size:
            self.anchor()
        else:
            self.tick()

    def _require_uploader(self, address: str) -> None:
        checked = self._uploaders.get(address)
        if checked is not None and time.monotonic() - checked < _UPLOADER_CACHE_SECONDS:
            return
        if not self._contract.view("isUploader", address)[0]:
            raise AccessDenied(f"store record: {address} is not an authorized uploader")
        self._uploaders[address] = time.monotonic()

    # ------------------------------------------------------------ anchoring

    def anchor(self) -> AnchorInfo | None:
        """Publish the log's current root (with a consistency proof from the last one)."""
        operator = self._signer()
        with self._lock:
            return self._anchor(operator)

    def _anchor(self, operator: LocalAccount) -> AnchorInfo | None:
        if self.pending == 0:
            return None
        self.log.sync()
        size = self.log.size
        root = self.log.tree.root(size)
        proof = self.log.tree.consistency_proof(self._anchored_size, size)
        args = [root, size, proof]
        entries = size - self._anchored_size
        try:
            receipt, events = self._contract.transact_events(
                operator, "anchorBatch", b"", args, "anchor batch"
            )
        except ScanSealError as error:
            fields = {"root": "0x" + root.hex(), "entries": entries, "reason": error.reason}
            _log.warning("anchoring %d entries failed: %s", entries, error.reason,
                         extra={"fields": fields})  # fmt: skip
            self._sync_anchors()  # it may have been mined after all (a receipt timeout)
            raise
        self._anchor_count += 1
        self._anchored_size = size
        self._anchored_root = root
        self._first_pending = None
        self._anchored_at = time.time()
        stamp = next(f["timestamp"] for n, f in events if n == "BatchAnchored")
        fields = {"root": "0x" + root.hex(), "entries": entries, "size": size,
                  "anchor": self._anchor_count - 1, "tx_hash": receipt.tx_hash}  # fmt: skip
        _log.info("anchored %d entries, root 0x%s", entries, root.hex(), extra={"fields": fields})
        return AnchorInfo(
            operator.address,
            self._anchor_count - 1,
            root,
            size,
            stamp,
            receipt.tx_hash,
            receipt.gas_used,
        )

    def anchoring(self) -> tuple[float | None, float | None, int]:
        """Seconds the oldest pending entry has waited, seconds since the latest anchor, and
        how many roots are anchored."""
        waited = None if self._first_pending is None else time.monotonic() - self._first_pending
        since = None if self._anchored_at is None else max(0.0, time.time() - self._anchored_at)
        return (waited if self.pending else None), since, self._anchor_count

    def tick(self) -> AnchorInfo | None:
        """Anchor if the oldest pending entry has waited `batch_seconds`."""
        if self._first_pending is None:
            return None
        if time.monotonic() - self._first_pending < self._config.batch_seconds:
            return None
        return self.anchor()

    # ------------------------------------------------------------ reading and proving

    def may_access(self, rid: bytes, account: str) -> bool:
        """The mirrored hasAccess, or the uploader of a record that exists only in this log."""
        if self._mirror.has_access(rid, account):
            return True
        entry = self.batched_record(rid)
        return entry is not None and entry.actor == to_checksum_address(account)

    def batched_record(self, rid: bytes) -> Entry | None:
        """The record entry for `rid`, if this log holds one."""
        index = self.log.record_index(rid)
        return None if index is None else Entry.decode(self.log.entry(index))

    def log_index(self, rid: bytes) -> int | None:
        """The index of the record entry for `rid`, if this log holds one."""
        return self.log.record_index(rid)

    def prove(self, index: int) -> BatchProof:
        """The inclusion proof of log entry `index` against the latest anchored root."""
        if not 0 <= index < self.log.size:
            raise NotFound(f"no batched entry #{index}")
        if index >= self._anchored_size:
            raise InvalidInput(f"batched entry #{index} is not anchored yet")
        path = self.log.tree.inclusion_proof(index, self._anchored_size)
        return BatchProof(
            self._operator_address,
            self._anchor_count - 1,
            index,
            self._anchored_size,
            self._anchored_root,
            self.log.entry(index),
            tuple(path),
        )

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that the log at `old_size` is a prefix of the log at `new_size`."""
        return self.log.tree.consistency_proof(old_size, new_size)

    def trail(self, rid: bytes) -> list[AuditEntry]:
        """The record's entries in this log, each with its proof once anchored."""
        trail = []
        for index in self.log.indexes_for(rid):
            entry = Entry.decode(self.log.entry(index))
            proof = self.prove(index) if index < self._anchored_size else None
            trail.append(_audit.audit_from_entry(entry, proof, index, self.log.block_at(index)))
        return trail

    def close(self) -> None:
        """Close the log file; pending entries stay in it."""
        self.log.close()
