"""The Ledger: ImageRegistry on an EVM, in per-record or Merkle-batched mode.

Per-record mode is the paper's design: one transaction per image and per access. Batched mode
appends records and access events to the operator's RFC 6962 log and publishes only its root,
every `batch_size` entries or `batch_seconds` seconds; each entry then has an inclusion proof
that anyone can check against the root stored on chain, and the contract itself checks that
each new root extends the previous one. Roles, identities and grants are always on chain: they
are the policy, and a policy must not wait for a batch.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from scanseal._address import checksum
from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound, ScanSealError
from scanseal.integrity.merkle import empty_root, leaf_hash, verify_inclusion
from scanseal.ledger import _abi, _audit, _deploy
from scanseal.ledger._batch import BatchLog, Entry
from scanseal.ledger._chain import Chain, RevertError
from scanseal.ledger._mirror import AccessMirror
from scanseal.ledger._revert import error_from_revert
from scanseal.ledger.config import LedgerConfig
from scanseal.ledger.models import (
    AccessLogEntry,
    AccessResult,
    AccessType,
    AnchorInfo,
    AuditEntry,
    BatchProof,
    GrantState,
    Reason,
    Receipt,
    Record,
)

_GAS = {"storeImage": 300_000, "anchorBatch": 400_000, "logAccess": 150_000}
_DEFAULT_GAS = 150_000
_WINDOW = 32
"""Transactions kept in flight by store_records: enough to hide the round trips, few enough
that a node's pool never backs up (anvil slows sharply with hundreds of pending transactions)."""
_UPLOADER_CACHE_SECONDS = 5.0


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


def check_proof(proof: BatchProof) -> Entry:
    """Check offline that `proof.entry` is leaf `proof.index` under `proof.root`.

    The caller must still compare `proof.root` and `proof.size` with the anchor on chain
    (`Ledger.verify_proof` does both). Raises IntegrityError.
    """
    verify_inclusion(leaf_hash(proof.entry), proof.index, proof.size, proof.path, proof.root)
    return Entry.decode(proof.entry)


class Ledger:
    """ImageRegistry seen from Python; every method that writes takes the signing account."""

    def __init__(
        self,
        chain: Chain,
        address: str,
        config: LedgerConfig,
        operator: LocalAccount | None = None,
    ) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.mode = config.mode
        self._config = config
        self._operator = operator
        self._operator_address = (
            operator.address
            if operator is not None
            else (to_checksum_address(config.operator) if config.operator else None)
        )
        self._uploaders: dict[str, float] = {}
        self._log: BatchLog | None = None
        self._anchor_count = 0
        self._anchored_size = 0
        self._anchored_root = empty_root()
        self._first_pending: float | None = None
        self._batch_lock = threading.RLock()  # one writer at a time on the log and its anchors
        first_block = _deploy.deploy_block(config.state_dir, chain, address)
        checkpoint = Path(config.state_dir) / f"mirror-{chain.chain_id}-{self.address}.sqlite3"
        self._access = AccessMirror(chain, self.address, first_block, checkpoint)
        if self.mode == "batched":
            self._open_batch_log()

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        config: LedgerConfig | None = None,
        *,
        operator: LocalAccount | None = None,
        deployer: LocalAccount | None = None,
    ) -> Ledger:
        """Connect as configured; deploy the contract first if there is none and a deployer is
        given (the deployer becomes its owner)."""
        config = config if config is not None else LedgerConfig.load()
        chain = _deploy.connect(config)
        address = config.contract or _deploy.saved_address(config.state_dir, chain.chain_id)
        if address is None:
            if deployer is None:
                chain.close()
                raise NotFound("no ImageRegistry is deployed on this chain yet")
            address, block = _deploy.deploy(chain, deployer)
            _deploy.save_address(config.state_dir, chain.chain_id, address, block)
        _deploy.check_code(chain, address)
        return cls(chain, address, config, operator)

    def close(self) -> None:
        """Anchor nothing, lose nothing: pending batched entries stay in the log file."""
        self._access.close()
        if self._log is not None:
            self._log.close()
        self.chain.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ roles and identities

    def transfer_ownership(self, owner: LocalAccount, new_owner: str) -> Receipt:
        """Owner only: hand the contract to another account."""
        return self._tx(owner, "transferOwnership", b"", [new_owner], "transfer ownership")

    def owner(self) -> str:
        """The contract owner's address."""
        return str(self._view("owner")[0])

    def set_admin(self, owner: LocalAccount, account: str, enabled: bool = True) -> Receipt:
        """Owner only: make `account` a department admin (or stop it being one)."""
        return self._tx(owner, "setAdmin", b"", [account, enabled], "set admin")

    def register_identity(self, admin: LocalAccount, account: str, card_hash: bytes) -> Receipt:
        """Admin only: bind `account` to the SHA-256 of its holder's identity card."""
        _check_hash(card_hash, "identity-card hash")
        return self._tx(admin, "registerIdentity", b"", [account, card_hash], "register identity")

    def authorize_uploader(self, admin: LocalAccount, account: str) -> Receipt:
        """Admin only: let a registered identity store records."""
        return self._tx(admin, "authorizeUploader", b"", [account], "authorize uploader")

    def deauthorize_uploader(self, admin: LocalAccount, account: str) -> Receipt:
        """Admin only: stop an uploader from storing further records."""
        self._uploaders.pop(to_checksum_address(account), None)
        return self._tx(admin, "deauthorizeUploader", b"", [account], "deauthorize uploader")

    def identity_of(self, account: str) -> bytes | None:
        """The registered identity-card hash of `account`, if any."""
        (card,) = self._view("identityOf", account)
        return bytes(card) if any(card) else None

    def is_admin(self, account: str) -> bool:
        """Whether `account` is the owner or a department admin."""
        return bool(self._view("isAdmin", account)[0])

    def is_uploader(self, account: str) -> bool:
        """Whether `account` may store records."""
        return bool(self._view("isUploader", account)[0])

    # ------------------------------------------------------------ records

    def store_record(
        self, uploader: LocalAccount, cid: bytes, image_hash: bytes, h3: bytes, pixel_digest: bytes
    ) -> Receipt:
        """Commit one image's hashes: a transaction (per-record) or a log entry (batched)."""
        return self.store_records(uploader, [RecordInput(cid, image_hash, h3, pixel_digest)])[0]

    def store_records(self, uploader: LocalAccount, items: Sequence[RecordInput]) -> list[Receipt]:
        """Commit many images. Per-record mode still sends one transaction each, but keeps a
        window of them in flight instead of waiting for each receipt, as a busy gateway would.
        A refusal raises after the transactions already sent have settled or failed."""
        for item in items:
            _check_record_input(item)
        if self.mode == "batched":
            with self._batch_lock:
                return self._append_records(uploader, items)
        receipts: list[Receipt] = []
        in_flight: deque[tuple[dict[str, Any], str, bytes]] = deque()
        for item in items:
            args = [item.cid, item.image_hash, item.h3, item.pixel_digest]
            tx, tx_hash = self._send(uploader, "storeImage", args)
            in_flight.append((tx, tx_hash, record_id(item.cid)))
            if len(in_flight) >= _WINDOW:
                receipts.append(self._settle(uploader, *in_flight.popleft(), "store record"))
        while in_flight:
            receipts.append(self._settle(uploader, *in_flight.popleft(), "store record"))
        return receipts

    def get_record(self, cid: bytes) -> Record:
        """The record for a manifest CID: from the chain, or from an anchored batch entry."""
        rid = record_id(cid)
        try:
            values = self._view("getRecord", rid)
        except NotFound:
            entry = self._batched_record(rid)
            if entry is None:
                raise
            return _record_from_entry(entry)
        stored_cid, image_hash, h3, pixel, uploader, stamp = values
        return Record(rid, bytes(stored_cid), image_hash, h3, pixel, uploader, stamp, "chain")

    def record_receipt(self, cid: bytes) -> Receipt | None:
        """The receipt the record for ``cid`` was committed with, or None if it never was: its
        entry in the batched log, else its ``ImageStored`` transaction. This is how a repeated
        upload learns that it was already registered (a crash before its answer was sent)."""
        rid = record_id(cid)
        index = None if self._log is None else self._log.record_index(rid)
        if index is not None:
            return Receipt(rid, "batched", log_index=index)
        if self._access.uploader_of(rid) is None:
            return None
        topics = ["0x" + _abi.event_topic("ImageStored").hex(), "0x" + rid.hex()]
        head = self.chain.head()[0]
        logs = self.chain.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": self._access.first_block,
                "toBlock": head,
                "topics": topics,
            }
        )
        if not logs:
            return None
        tx_hash = "0x" + bytes(logs[0]["transactionHash"]).hex()
        mined = self.chain.wait(tx_hash)
        return Receipt(rid, "per-record", tx_hash, int(mined["blockNumber"]), int(mined["gasUsed"]))

    def verify_record(
        self, cid: bytes, image_hash: bytes, h3: bytes, pixel_digest: bytes
    ) -> Record:
        """Check a recipient's hashes against the ledger; IntegrityError on any difference."""
        record = self.get_record(cid)
        if record.source == "batch":
            self.verify_proof(self.prove(self._record_index(record.record_id)))
        for name, expected, actual in (
            ("image hash (H1)", record.image_hash, image_hash),
            ("H3", record.h3, h3),
            ("pixel digest", record.pixel_digest, pixel_digest),
        ):
            if expected != actual:
                raise IntegrityError(f"{name} does not match the ledger for this record")
        return record

    def verify_image(self, cid: bytes, image_hash: bytes) -> bool:
        """The paper's verifyImage: whether H1 matches the per-record entry on chain."""
        return bool(self._view("verifyImage", record_id(cid), image_hash)[0])

    # ------------------------------------------------------------ access control

    def grant(self, controller: LocalAccount, cid: bytes, grantee: str) -> Receipt:
        """The record's uploader or an admin lets `grantee` open the record."""
        return self._tx(controller, "grantAccess", record_id(cid), [grantee], "grant access")

    def revoke(self, controller: LocalAccount, cid: bytes, grantee: str) -> Receipt:
        """Stop future releases to `grantee` (what it already downloaded stays with it)."""
        return self._tx(controller, "revokeAccess", record_id(cid), [grantee], "revoke access")

    def grant_state(self, cid: bytes, account: str) -> GrantState:
        """The contract's ``grantOf``: never granted, active or revoked."""
        return self._access.grant_of(record_id(cid), account)

    @property
    def ready(self) -> bool:
        """Whether the access mirror has caught up with the chain once since opening."""
        return self._access.ready.is_set()

    def catch_up(self) -> None:
        """Bring the access mirror up to the chain head from its checkpoint and save it (at
        start, before serving: afterwards each decision reads only the newest blocks)."""
        self._access.catch_up()

    def has_access(self, cid: bytes, account: str) -> bool:
        """Whether `account` may open the record now: the contract's hasAccess (answered from
        its mirrored grant table), or the uploader of a record that exists only in this log."""
        return self._may_access(record_id(cid), account)

    def _may_access(self, rid: bytes, account: str) -> bool:
        if self._access.has_access(rid, account):
            return True
        entry = self._batched_record(rid)
        return entry is not None and entry.actor == to_checksum_address(account)

    def log_access(
        self,
        reporter: LocalAccount,
        cid: bytes,
        accessor: str,
        access_type: AccessType = AccessType.VIEW,
        reason: Reason = Reason.NONE,
    ) -> AccessResult:
        """Record an access attempt, allowed or denied. The contract (or, batched, the grant
        table on chain) decides `allowed`; a nonzero `reason` from the reporter forces a denial."""
        rid = record_id(cid)
        if self.mode == "batched":
            with self._batch_lock:
                return self._append_access(reporter, rid, accessor, access_type, reason)
        receipt = self._tx(
            reporter, "logAccess", rid, [accessor, int(access_type), int(reason)], "log access"
        )
        for name, fields in self._receipt_events(receipt):
            if name == "AccessAttempt":
                return AccessResult(bool(fields["allowed"]), int(fields["reason"]), receipt)
        raise IntegrityError("logAccess emitted no AccessAttempt event")

    def access_log(self, cid: bytes) -> list[AccessLogEntry]:
        """The paper's AccessLog array for a record, as the contract stores it (per-record)."""
        rid = record_id(cid)
        count = int(self._view("accessLogCount", rid)[0])
        entries = []
        for index in range(count):
            ((accessor, when, kind, authorized, reason),) = self._view("accessLogAt", rid, index)
            entries.append(AccessLogEntry(accessor, int(when), int(kind), bool(authorized), reason))
        return entries

    # ------------------------------------------------------------ audit

    def audit_trail(self, cid: bytes) -> list[AuditEntry]:
        """Every stored, granted, revoked and access event for a record, oldest first."""
        rid = record_id(cid)
        trail = _audit.chain_trail(self.chain, self.address, self._access.first_block, rid)
        trail += self._batch_trail(rid)
        trail.sort(key=lambda entry: entry.timestamp)
        return trail

    # ------------------------------------------------------------ batched mode

    @property
    def pending(self) -> int:
        """Entries appended to the batched log but not anchored yet."""
        return 0 if self._log is None else self._log.size - self._anchored_size

    def anchor(self) -> AnchorInfo | None:
        """Publish the log's current root (with a consistency proof from the last one)."""
        log, operator = self._batch_parts()
        with self._batch_lock:
            return self._anchor(log, operator)

    def _anchor(self, log: BatchLog, operator: LocalAccount) -> AnchorInfo | None:
        if self.pending == 0:
            return None
        log.sync()
        size = log.size
        root = log.tree.root(size)
        proof = log.tree.consistency_proof(self._anchored_size, size)
        try:
            receipt = self._tx(operator, "anchorBatch", b"", [root, size, proof], "anchor batch")
        except ScanSealError:
            self._sync_anchors()  # it may have been mined after all (a receipt timeout)
            raise
        self._anchor_count += 1
        self._anchored_size = size
        self._anchored_root = root
        self._first_pending = None
        stamp = next(
            f["timestamp"] for n, f in self._receipt_events(receipt) if n == "BatchAnchored"
        )
        return AnchorInfo(
            operator.address,
            self._anchor_count - 1,
            root,
            size,
            stamp,
            receipt.tx_hash,
            receipt.gas_used,
        )

    def tick(self) -> AnchorInfo | None:
        """Anchor if the oldest pending entry has waited `batch_seconds`; call periodically."""
        if self._first_pending is None:
            return None
        if time.monotonic() - self._first_pending < self._config.batch_seconds:
            return None
        return self.anchor()

    def prove(self, index: int) -> BatchProof:
        """The inclusion proof of log entry `index` against the latest anchored root."""
        log, operator = self._read_parts()
        if not 0 <= index < log.size:
            raise NotFound(f"no batched entry #{index}")
        if index >= self._anchored_size:
            raise InvalidInput(f"batched entry #{index} is not anchored yet")
        path = log.tree.inclusion_proof(index, self._anchored_size)
        return BatchProof(
            operator,
            self._anchor_count - 1,
            index,
            self._anchored_size,
            self._anchored_root,
            log.entry(index),
            tuple(path),
        )

    def verify_proof(self, proof: BatchProof) -> Entry:
        """Check a proof against the root the contract stores; returns the proven entry."""
        anchor = self.get_anchor(proof.operator, proof.anchor_index)
        if (anchor.root, anchor.size) != (proof.root, proof.size):
            raise IntegrityError("the proof's root is not the root anchored on chain")
        return check_proof(proof)

    def get_anchor(self, operator: str, index: int) -> AnchorInfo:
        """Anchor `index` of `operator`, read from the contract."""
        ((root, size, stamp),) = self._view("getAnchor", operator, index)
        return AnchorInfo(to_checksum_address(operator), index, bytes(root), int(size), int(stamp))

    def anchor_count(self, operator: str) -> int:
        """How many roots `operator` has anchored."""
        return int(self._view("anchorCount", operator)[0])

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that the operator's log at `old_size` is a prefix of the log at `new_size`."""
        log, _ = self._read_parts()
        return log.tree.consistency_proof(old_size, new_size)

    # ------------------------------------------------------------ internals: transactions

    def _send(
        self, account: LocalAccount, function: str, args: list[Any]
    ) -> tuple[dict[str, Any], str]:
        data = _abi.encode_call(function, *args)
        tx = {"to": self.address, "data": data, "gas": _GAS.get(function, _DEFAULT_GAS)}
        return tx, self.chain.send(account, tx)

    def _settle(
        self, account: LocalAccount, tx: dict[str, Any], tx_hash: str, rid: bytes, action: str
    ) -> Receipt:
        receipt = self.chain.wait(tx_hash)
        if receipt["status"] != 1:
            data = self.chain.revert_data(tx, account.address, int(receipt["blockNumber"]) - 1)
            raise error_from_revert(data, action)
        return Receipt(
            rid, "per-record", tx_hash, int(receipt["blockNumber"]), int(receipt["gasUsed"])
        )

    def _tx(
        self, account: LocalAccount, function: str, rid: bytes, args: list[Any], action: str
    ) -> Receipt:
        call_args = [rid, *args] if rid else args
        tx, tx_hash = self._send(account, function, call_args)
        return self._settle(account, tx, tx_hash, rid, action)

    def _receipt_events(self, receipt: Receipt) -> list[tuple[str, dict[str, Any]]]:
        assert receipt.tx_hash is not None
        logs = self.chain.wait(receipt.tx_hash)["logs"]
        decoded = [_abi.decode_log(list(log["topics"]), bytes(log["data"])) for log in logs]
        return [event for event in decoded if event is not None]

    def _view(self, function: str, *args: Any) -> tuple[Any, ...]:
        try:
            raw = self.chain.call(self.address, _abi.encode_call(function, *args))
        except RevertError as reverted:
            raise error_from_revert(reverted.data, function) from None
        return _abi.decode_output(function, raw)

    # ------------------------------------------------------------ internals: batched log

    def _batch_parts(self) -> tuple[BatchLog, LocalAccount]:
        """The log and the operator's signing account, for writing."""
        if self._log is None or self._operator is None:
            raise InvalidInput("this ledger is not the operator of a batched log")
        return self._log, self._operator

    def _read_parts(self) -> tuple[BatchLog, str]:
        """The log and the operator's address, for reading and proving."""
        if self._log is None or self._operator_address is None:
            raise InvalidInput("this ledger is not in batched mode")
        return self._log, self._operator_address

    def _open_batch_log(self) -> None:
        operator = self._operator_address
        if operator is None:
            raise InvalidInput("batched mode needs the operator: its account, or its address")
        path = Path(self._config.state_dir) / f"batch-{operator}.jsonl"
        self._log = BatchLog(path, durable=self._config.durable)
        self._sync_anchors()
        if self._log.size < self._anchored_size:
            raise IntegrityError(
                f"{path} holds {self._log.size} entries but {self._anchored_size} are anchored"
            )
        if self._log.tree.root(self._anchored_size) != self._anchored_root:
            raise IntegrityError(f"{path} does not match the root anchored on chain")
        if self.pending and self._operator is not None:
            self.anchor()  # entries that were appended before a crash

    def _sync_anchors(self) -> None:
        """Take the operator's latest anchor from the chain, the only authority on it."""
        assert self._operator_address is not None
        self._anchor_count = self.anchor_count(self._operator_address)
        if self._anchor_count:
            latest = self.get_anchor(self._operator_address, self._anchor_count - 1)
            self._anchored_size, self._anchored_root = latest.size, latest.root

    def _append_records(
        self, uploader: LocalAccount, items: Sequence[RecordInput]
    ) -> list[Receipt]:
        log, operator = self._batch_parts()
        self._require_uploader(uploader.address)
        receipts = []
        for item in items:
            rid = record_id(item.cid)
            if self._batched_record(rid) is not None:
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
            receipts.append(Receipt(rid, "batched", log_index=log.append(entry)))
            self._after_append()
        return receipts

    def _append_access(
        self, reporter: LocalAccount, rid: bytes, accessor: str, kind: AccessType, reason: Reason
    ) -> AccessResult:
        log, operator = self._batch_parts()
        if reporter.address != operator.address:
            raise AccessDenied(f"{reporter.address} is not the operator of this batched log")
        code = int(reason)
        allowed = False
        if code == Reason.NONE:
            allowed = self._may_access(rid, accessor)
            if not allowed:
                revoked = self._access.grant_of(rid, accessor) == GrantState.REVOKED
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
        index = log.append(entry)
        self._after_append()
        return AccessResult(allowed, code, Receipt(rid, "batched", log_index=index))

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
        if not self.is_uploader(address):
            raise AccessDenied(f"store record: {address} is not an authorized uploader")
        self._uploaders[address] = time.monotonic()

    def _batched_record(self, rid: bytes) -> Entry | None:
        if self._log is None:
            return None
        index = self._log.record_index(rid)
        return None if index is None else Entry.decode(self._log.entry(index))

    def _record_index(self, rid: bytes) -> int:
        index = None if self._log is None else self._log.record_index(rid)
        if index is None:
            raise NotFound(f"record 0x{rid.hex()[:16]}… is not in the batched log")
        return index

    def _batch_trail(self, rid: bytes) -> list[AuditEntry]:
        if self._log is None:
            return []
        trail = []
        for index in self._log.indexes_for(rid):
            entry = Entry.decode(self._log.entry(index))
            proof = self.prove(index) if index < self._anchored_size else None
            trail.append(_audit.audit_from_entry(entry, proof))
        return trail


# ---------------------------------------------------------------- module helpers


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")


def _check_record_input(item: RecordInput) -> None:
    if not 2 <= len(item.cid) <= 128:
        raise InvalidInput("a CID must be 2 to 128 bytes")
    _check_hash(item.image_hash, "image hash (H1)")
    _check_hash(item.h3, "H3")
    _check_hash(item.pixel_digest, "pixel digest")


def _record_from_entry(entry: Entry) -> Record:
    return Record(
        entry.record_id,
        entry.cid,
        entry.image_hash,
        entry.h3,
        entry.pixel_digest,
        entry.actor,
        entry.timestamp,
        "batch",
    )
