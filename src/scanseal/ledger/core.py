"""The Ledger: ImageRegistry on an EVM, in per-record or Merkle-batched mode.

Per-record mode is the paper's design: one transaction per image and per access
(`_per_record`). Batched mode appends records and access events to the operator's RFC 6962 log
and publishes only its root (`_batched`); each entry then has an inclusion proof that anyone
can check against the root stored on chain. The facade picks one writer when it opens and
sends every record and access event to it. Roles, identities and grants are always on chain:
they are the policy, and a policy must not wait for a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from scanseal.errors import IntegrityError, InvalidInput, NotFound
from scanseal.integrity.merkle import leaf_hash, verify_inclusion
from scanseal.ledger import _audit, _deploy
from scanseal.ledger._batch import Entry
from scanseal.ledger._batched import BatchedWriter
from scanseal.ledger._chain import Chain
from scanseal.ledger._contract import Contract
from scanseal.ledger._mirror import AccessMirror
from scanseal.ledger._per_record import PerRecordWriter
from scanseal.ledger._writer import Writer
from scanseal.ledger.config import LedgerConfig
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
)

__all__ = ["MAX_BATCH_GRANTS", "Ledger", "RecordInput", "check_proof", "record_id"]
MAX_BATCH_GRANTS = 256
"""The most (record, grantee) pairs one ``grantAccessBatch`` takes (the contract's bound)."""


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
        *,
        read_only: bool = False,
    ) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.mode = config.mode
        self._config = config
        self._contract = Contract(chain, self.address)
        first_block = _deploy.deploy_block(config.state_dir, chain, address)
        checkpoint: Path | None = None  # a reader beside the gateway leaves its checkpoint alone
        if not read_only:
            checkpoint = Path(config.state_dir) / f"mirror-{chain.chain_id}-{self.address}.sqlite3"
        self._access = AccessMirror(chain, self.address, first_block, checkpoint)
        chain.mined = self._access.apply_receipt  # its own transactions' logs, not read back
        self._writer: Writer
        if self.mode == "batched":
            self._writer = BatchedWriter(self._contract, self._access, config, operator)
        else:
            self._writer = PerRecordWriter(self._contract, self._access)

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        config: LedgerConfig | None = None,
        *,
        operator: LocalAccount | None = None,
        deployer: LocalAccount | None = None,
        read_only: bool = False,
    ) -> Ledger:
        """Connect as configured; deploy the contract first if there is none and a deployer is
        given (the deployer becomes its owner). ``read_only``: a reader beside a running
        gateway; the embedded chain is then a replica of its journal that refuses to send, and
        nothing on disk is written (no mirror checkpoint, no log file created or cut)."""
        config = config if config is not None else LedgerConfig.load()
        if read_only and (operator is not None or deployer is not None):
            raise InvalidInput("a read-only ledger takes no operator and no deployer")
        chain = _deploy.connect(config, read_only=read_only)
        address = config.contract or _deploy.saved_address(config.state_dir, chain.chain_id)
        if address is None:
            if deployer is None:
                chain.close()
                raise NotFound("no ImageRegistry is deployed on this chain yet")
            address, block = _deploy.deploy(chain, deployer)
            _deploy.save_address(config.state_dir, chain.chain_id, address, block)
        try:
            _deploy.check_code(chain, address)
            return cls(chain, address, config, operator, read_only=read_only)
        except BaseException:
            chain.close()
            raise

    def close(self) -> None:
        """Anchor nothing, lose nothing: pending batched entries stay in the log file."""
        self._access.close()
        self._writer.close()
        self.chain.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ roles and identities

    def transfer_ownership(self, owner: LocalAccount, new_owner: str) -> Receipt:
        """Owner only, step one of two: propose `new_owner`, who takes the role only by
        `accept_ownership`. Proposing the owner itself withdraws a pending proposal."""
        return self._tx(owner, "transferOwnership", b"", [new_owner], "transfer ownership")

    def accept_ownership(self, new_owner: LocalAccount) -> Receipt:
        """Step two: the proposed owner takes the contract (AccessDenied for anyone else)."""
        return self._tx(new_owner, "acceptOwnership", b"", [], "accept ownership")

    def pending_owner(self) -> str | None:
        """The proposed next owner, if a transfer is pending."""
        (pending,) = self._view("pendingOwner")
        return None if int(pending, 16) == 0 else str(pending)

    def owner(self) -> str:
        """The contract owner's address."""
        return str(self._view("owner")[0])

    def set_admin(self, owner: LocalAccount, account: str, enabled: bool = True) -> Receipt:
        """Owner only: make `account` a department admin (or stop it being one)."""
        return self._tx(owner, "setAdmin", b"", [account, enabled], "set admin")

    def admins(self) -> list[str]:
        """The department admins the owner appointed (the owner itself not included), read from
        the contract's ``AdminChanged`` events and checked against ``isAdmin``."""
        found = _audit.admin_accounts(self.chain, self.address, self._access.first_block)
        return [account for account in found if self.is_admin(account)]

    def register_identity(self, admin: LocalAccount, account: str, card_hash: bytes) -> Receipt:
        """Admin only: bind `account`, which has no identity yet, to the SHA-256 of its holder's
        identity card. Changing a registered identity, or setting the owner's, is the owner's
        alone; a card hash held by another account is refused; the same hash again is a no-op."""
        _check_hash(card_hash, "identity-card hash")
        return self._tx(admin, "registerIdentity", b"", [account, card_hash], "register identity")

    def authorize_uploader(self, admin: LocalAccount, account: str) -> Receipt:
        """Admin only: let a registered identity store records."""
        return self._tx(admin, "authorizeUploader", b"", [account], "authorize uploader")

    def deauthorize_uploader(self, admin: LocalAccount, account: str) -> Receipt:
        """Admin only: stop an uploader from storing further records."""
        self._writer.forget_uploader(to_checksum_address(account))
        return self._tx(admin, "deauthorizeUploader", b"", [account], "deauthorize uploader")

    def identity_of(self, account: str) -> bytes | None:
        """The registered identity-card hash of `account`, if any, as of a head check: the
        access mirror answers it from the card hash of the account's latest
        ``IdentityRegistered`` event, or reads it from the contract once if it has seen none
        (an upload asks for the uploader and every recipient)."""
        return self._access.identity_of(account, self._read_identity)

    def _read_identity(self, account: str) -> bytes | None:
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
        return self._writer.store(uploader, items)

    def get_record(self, cid: bytes) -> Record:
        """The record for a manifest CID: from the chain, or from an anchored batch entry.
        One in both places is an IntegrityError: a record stored on chain under the CID of a
        batch entry (squatting it) never shadows the entry."""
        rid = record_id(cid)
        entry = self._writer.batched_record(rid)
        if entry is not None and not self._access.on_chain(rid):
            # the access mirror has seen no ImageStored for it up to the head it just checked:
            # the chain holds none (what a reverting getRecord call would say, at a fraction
            # of an EVM run); once one is stored, the call below finds the contradiction
            return _record_from_entry(entry)
        try:
            values = self._view("getRecord", rid)
        except NotFound:
            if entry is None:
                raise
            return _record_from_entry(entry)
        stored_cid, image_hash, h3, pixel, uploader, stamp = values
        if entry is not None:
            raise IntegrityError(
                f"record 0x{rid.hex()[:16]}… is in the batched log of {entry.reporter} and also "
                f"stored on chain by {uploader}: the two contradict each other"
            )
        return Record(rid, bytes(stored_cid), image_hash, h3, pixel, uploader, stamp, "chain")

    def record_receipt(self, cid: bytes) -> Receipt | None:
        """The receipt the record for ``cid`` was committed with, or None if it never was: its
        entry in the batched log, else its ``ImageStored`` transaction. This is how a repeated
        upload learns that it was already registered (a crash before its answer was sent)."""
        rid = record_id(cid)
        index = self._writer.log_index(rid)
        if index is not None:
            return Receipt(rid, "batched", log_index=index)
        if not self._access.on_chain(rid):
            return None
        tx_hash = _audit.stored_tx(self.chain, self.address, self._access.first_block, rid)
        if tx_hash is None:
            return None
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

    def controller_of(self, cid: bytes) -> str | None:
        """Who controls the on-chain record besides the admins (its uploader until handed
        over); None for a record handed to nobody or not on chain."""
        (controller,) = self._view("controllerOf", record_id(cid))
        return None if int(controller, 16) == 0 else str(controller)

    def set_controller(self, caller: LocalAccount, cid: bytes, controller: str | None) -> Receipt:
        """Hand an on-chain record to `controller` (a registered identity), or to nobody
        (None): an admin may, and so may the current controller while an authorized uploader.
        The old controller loses its control and its own access with it."""
        target = controller if controller is not None else "0x" + "00" * 20
        return self._tx(caller, "setController", record_id(cid), [target], "set controller")

    def grant(self, controller: LocalAccount, cid: bytes, grantee: str) -> Receipt:
        """An admin, or the record's controller while an authorized uploader, lets `grantee`
        open the record."""
        return self._tx(controller, "grantAccess", record_id(cid), [grantee], "grant access")

    def grant_many(self, controller: LocalAccount, grants: Sequence[tuple[bytes, str]]) -> Receipt:
        """``grant`` for each (cid, grantee) pair in one transaction, all or none
        (``grantAccessBatch``, 1 to :data:`MAX_BATCH_GRANTS` pairs): a gateway reserves and
        grants the records of several uploads at once."""
        if not 0 < len(grants) <= MAX_BATCH_GRANTS:
            raise InvalidInput(f"a batch of grants names 1 to {MAX_BATCH_GRANTS} records")
        rids = [record_id(cid) for cid, _grantee in grants]
        grantees = [grantee for _cid, grantee in grants]
        return self._tx(controller, "grantAccessBatch", b"", [rids, grantees], "grant access")

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
        return self._writer.may_access(record_id(cid), account)

    def log_access(
        self,
        reporter: LocalAccount,
        cid: bytes,
        accessor: str,
        access_type: AccessType = AccessType.VIEW,
        reason: Reason = Reason.NONE,
        *,
        via: bytes | None = None,
    ) -> AccessResult:
        """Record an access attempt, allowed or denied. The contract (or, batched, the grant
        table on chain) decides `allowed`; a nonzero `reason` from the reporter forces a denial
        and must be a reporter code (>= 16, InvalidInput otherwise). ``via`` (an admin's
        report, ``logAccessVia``): the CID of a record that contains this one, a study record
        whose manifest lists it; a grant on either allows the access."""
        Reason.check_reported(int(reason))
        through = None if via is None else record_id(via)
        if through == record_id(cid):
            raise InvalidInput("an access through another record names a record other than itself")
        return self._writer.log_access(
            reporter, record_id(cid), accessor, access_type, reason, through
        )

    def access_log(self, cid: bytes) -> list[AccessLogEntry]:
        """The paper's AccessLog array for a record, as the contract stores it (per-record)."""
        rid = record_id(cid)
        count = int(self._view("accessLogCount", rid)[0])
        entries = []
        for index in range(count):
            ((accessor, when, kind, allowed, why, by),) = self._view("accessLogAt", rid, index)
            entries.append(AccessLogEntry(accessor, int(when), int(kind), bool(allowed), why, by))
        return entries

    # ------------------------------------------------------------ audit

    def audit_trail(self, cid: bytes) -> list[AuditEntry]:
        """Every stored, granted, revoked, access and administrative event for a record, in
        the order they happened (see ``_audit.in_chain_order``)."""
        rid = record_id(cid)
        trail = _audit.chain_trail(self.chain, self.address, self._access.first_block, rid)
        return _audit.in_chain_order(trail + self._writer.trail(rid))

    def audit_events(
        self, from_block: int = 0, rid: bytes | None = None
    ) -> list[tuple[bytes, AuditEntry]]:
        """The contract events of every record (or of the one whose recordId is ``rid``) from
        block ``from_block`` on, each with its recordId, in chain order; batched entries are
        read per record with :meth:`audit_trail`."""
        start = max(from_block, self._access.first_block)
        return _audit.chain_events(self.chain, self.address, start, rid)

    def admin_trail(self) -> list[AuditEntry]:
        """Every administrative change of the registry (ownership, admins, uploaders,
        identities), in chain order."""
        return _audit.admin_trail(self.chain, self.address, self._access.first_block)

    # ------------------------------------------------------------ batched mode

    @property
    def pending(self) -> int:
        """Entries appended to the batched log but not anchored yet."""
        return self._writer.pending

    def status(self) -> LedgerStatus:
        """Pending entries, their wait, the time since the last anchor and the transaction
        failures: what ``/v1/health`` and ``/metrics`` report, without asking the chain."""
        waited, since, anchors = self._writer.anchoring()
        wait = self._config.batch_seconds if self.mode == "batched" else None
        failures = self._contract.failures
        return LedgerStatus(self.mode, self.pending, waited, since, anchors, failures, wait)

    def anchor(self) -> AnchorInfo | None:
        """Publish the log's current root (with a consistency proof from the last one)."""
        return self._writer.anchor()

    def tick(self) -> AnchorInfo | None:
        """Anchor if the oldest pending entry has waited `batch_seconds`; call periodically."""
        return self._writer.tick()

    def prove(self, index: int) -> BatchProof:
        """The inclusion proof of log entry `index` against the latest anchored root."""
        return self._writer.prove(index)

    def verify_proof(self, proof: BatchProof) -> Entry:
        """Check a proof against the root the contract stores; returns the proven entry."""
        anchor = self.get_anchor(proof.operator, proof.anchor_index)
        if (anchor.root, anchor.size) != (proof.root, proof.size):
            raise IntegrityError("the proof's root is not the root anchored on chain")
        return check_proof(proof)

    def get_anchor(self, operator: str, index: int) -> AnchorInfo:
        """Anchor `index` of `operator`, read from the contract."""
        return self._contract.get_anchor(operator, index)

    def anchor_count(self, operator: str) -> int:
        """How many roots `operator` has anchored."""
        return self._contract.anchor_count(operator)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that the operator's log at `old_size` is a prefix of the log at `new_size`."""
        return self._writer.consistency_proof(old_size, new_size)

    # ------------------------------------------------------------ internals

    def _record_index(self, rid: bytes) -> int:
        index = self._writer.log_index(rid)
        if index is None:
            raise NotFound(f"record 0x{rid.hex()[:16]}… is not in the batched log")
        return index

    def _tx(
        self, account: LocalAccount, function: str, rid: bytes, args: list[Any], action: str
    ) -> Receipt:
        return self._contract.transact(account, function, rid, args, action)

    def _view(self, function: str, *args: Any) -> tuple[Any, ...]:
        return self._contract.view(function, *args)


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
