"""The department gateway, without HTTP: every decision the REST API makes is made here.

The gateway holds an admin account on the ImageRegistry. It stores what clinicians upload,
records it on the ledger, relays grants and revocations that record owners sign, and releases a
record only after the ledger says the requester may have it. Every attempt to read a record —
allowed, refused by the ledger, or refused earlier for a bad signature, a replay or an expired
request — is reported with ``logAccess`` (or appended to the batched log) *before* the answer
goes out. The gateway never holds a clinician's key and never sees plaintext.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_utils.address import is_address, to_checksum_address

from scanseal import __version__
from scanseal.crypto import envelope
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import (
    AccessDenied,
    IntegrityError,
    InvalidInput,
    NotFound,
    ReplayDetected,
    ScanSealError,
)
from scanseal.ledger import AccessResult, AccessType, Ledger, Reason, Receipt, Record
from scanseal.protocol import wire
from scanseal.protocol.signed import Domain, Request, parse_request, recover_requester
from scanseal.service._access import note_requester
from scanseal.service._grant_objects import accept_grant
from scanseal.service._grants import GrantBatcher
from scanseal.service._requests import (
    check_window,
    claimed_requester,
    read_all,
    receipt_json,
    record_bytes,
    refusal_reason,
    tag,
    upload_fields,
)
from scanseal.service._study_grants import settle_interrupted
from scanseal.service._study_index import StudyAccess
from scanseal.service.audit_index import AuditIndex
from scanseal.service.config import GatewayConfig
from scanseal.service.inbox import Inbox
from scanseal.service.members import Members
from scanseal.service.state import GatewayState, StoredRecord
from scanseal.storage import BlobStore, cid_of
from scanseal.transfer import (
    Grant,
    LedgerHashes,
    Manifest,
    Records,
    Registration,
    cid_bytes,
    screen_verdict,
    signed_manifest,
    store_sealed,
)

_MANIFESTS_KEPT = 4096  # a manifest is a few KiB
_RECORDS_KEPT = 65536  # a record's ledger hashes, about 0.5 KiB each: 32 MiB at most
Headers = Mapping[str, str | None]
T = TypeVar("T")
_log = logging.getLogger("scanseal.gateway")
_WARM_UP_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Authenticated:
    """A request whose signature, window and nonce all held."""

    request: Request
    requester: str


class Gateway:
    """One department's gateway over a ledger, a block store and its own SQLite state."""

    def __init__(
        self,
        identity: Identity,
        ledger: Ledger,
        store: BlobStore,
        state: GatewayState,
        config: GatewayConfig,
    ) -> None:
        self.identity = identity
        self.ledger = ledger
        self.store = store
        self.state = state
        self.config = config
        self.domain = Domain(ledger.chain.chain_id, ledger.address, identity.address)
        self.records = Records(ledger, store, identity.account)
        self._ledger_lock = threading.RLock()  # py-evm and the batched log: one caller at a time
        self.members = Members(ledger, identity.account, config.members, self._ledger_lock)
        self.grants = GrantBatcher(ledger, self.records, self.locked)
        self.on_denied: Callable[[str, int], None] = lambda _action, _reason: None
        self._records: dict[str, Record] = {}
        self._manifests: dict[str, bytes] = {}
        self.inbox = Inbox(config.state_dir / "inbox.sqlite3")
        self.audit_index = AuditIndex(config.state_dir / "audit.sqlite3")
        self.studies = StudyAccess(config.state_dir / "studies.sqlite3", ledger, state.record)
        self._warm_up: threading.Thread | None = None
        self._closing = threading.Event()

    def close(self) -> None:
        self._closing.set()
        if self._warm_up is not None:
            self._warm_up.join(timeout=60)
        with self._ledger_lock:
            if self.ledger.mode == "batched" and self.ledger.pending:
                self.ledger.anchor()
            self.ledger.close()
        self.state.close()
        self.inbox.close()
        self.audit_index.close()
        self.studies.close()
        self.store.close()

    def locked(self, work: Callable[[], T]) -> T:
        """Run ``work`` holding the ledger lock."""
        with self._ledger_lock:
            return work()

    def tick(self) -> None:
        """Anchor the batched log when its oldest entry has waited long enough; the members
        scan SIGHUP asked for."""
        self.members.tick()
        if self.ledger.mode == "batched":
            with self._ledger_lock:
                self.ledger.tick()

    # --- bootstrap

    def enroll(self, card: IdentityCard) -> bool:
        """Register ``card`` on the ledger unless it already is (a rotated card replaces the
        previous one when the gateway is the owner: :class:`Members`); True when it changed."""
        return self.members.enroll(card)

    def bootstrap(self) -> None:
        """Make sure the gateway may act: admin, registered, authorized uploader; enroll members."""
        me = self.identity.address
        with self._ledger_lock:
            if not self.ledger.is_admin(me):
                raise AccessDenied(f"gateway account {me} is not an admin of the ImageRegistry")
            self.enroll(self.identity.card)
            if not self.ledger.is_uploader(me):
                self.ledger.authorize_uploader(self.identity.account, me)
        self.members.bootstrap()

    def start(self) -> None:
        """Warm up off the request path (what ``scanseal serve`` does before it listens): bring
        the grant-table mirror up to the chain from its checkpoint, then finish the uploads a
        crash cut short. Until that is done :meth:`health` says ``starting``."""
        self._warm_up = threading.Thread(target=self._warm, name="warm-up", daemon=True)
        self._warm_up.start()

    @property
    def ready(self) -> bool:
        """False while the warm-up runs (a gateway never started is ready: it catches up at
        its first access decision)."""
        return self._warm_up is None or not self._warm_up.is_alive()

    def _warm(self) -> None:
        while not self._closing.is_set():
            try:
                self.locked(self.ledger.catch_up)
                break
            except ScanSealError as error:  # the node is down: stay "starting" and try again
                _log.warning("gateway warm-up: %s; retrying", error.reason)
                self._closing.wait(_WARM_UP_RETRY_SECONDS)
        self.recover_uploads()

    def recover_uploads(self) -> int:
        """Finish every pending upload the ledger already holds (a crash came after the ledger
        write); returns how many. One the ledger does not hold stays pending: it was never
        acknowledged, and its client's retry registers it. One awaiting its study is not
        granted here (its study's registration grants it), and a study whose registration a
        crash cut short before its grants is settled (``_study_grants``)."""
        finished = 0
        for stored in self.state.pending_uploads():
            if self._closing.is_set():
                break
            try:
                manifest = Manifest.from_json(read_all(self.store, stored.manifest_cid))
                grant = not self.state.awaiting_study([stored.manifest_cid])
                complete = functools.partial(
                    self.records.complete, stored.manifest_cid, manifest, grant=grant
                )
                if self.locked(complete):
                    self._finish_upload(stored, manifest, granted=grant)
                    finished += 1
            except ScanSealError as error:
                _log.warning("upload %s stays pending: %s", stored.manifest_cid, error.reason)
        try:
            settle_interrupted(self)
        except ScanSealError as error:
            _log.warning("a study's grants stay unsent: %s", error.reason)
        return finished

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ready else "starting",
            "version": __version__,
            "gateway": self.identity.address,
            "chain_id": self.domain.chain_id,
            "contract": self.domain.contract,
            "ledger_mode": self.ledger.mode,
            "max_lifetime": self.config.max_lifetime,
        }

    # --- authentication

    def authenticate(
        self, action: str, record: str, headers: Mapping[str, str | None], body: bytes
    ) -> Authenticated:
        """Check a signed request for ``action`` on ``record``; raises with the ledger reason.

        Failures carry ``ledger_reason`` so a read attempt can be logged with the right code.
        """
        request = parse_request(headers.get("request"))
        mismatch = (
            request.action != action
            or request.record != record
            or request.gateway != self.identity.address
            or request.body_hash != hashlib.sha256(body).digest()
        )
        if mismatch:
            raise tag(AccessDenied("request was signed for another action, record or body"), 16)
        try:
            signer = recover_requester(self.domain, request, headers.get("signature"))
        except IntegrityError as error:
            raise tag(AccessDenied(error.reason), Reason.BAD_SIGNATURE) from None
        if signer != request.requester:
            raise tag(
                AccessDenied(f"request signed by {signer}, not {request.requester}"),
                Reason.BAD_SIGNATURE,
            )
        check_window(request, self.config.max_lifetime, self.config.clock_skew)
        if not self.state.use_nonce(request.nonce, request.requester, request.expires_at):
            raise tag(ReplayDetected("request nonce was already used (replay)"), Reason.REPLAY)
        self.members.seen((signer,))
        note_requester(signer)  # the request's access-log line names who it authenticated as
        return Authenticated(request, signer)

    # --- reading a record

    def fetch(self, record: str, headers: Mapping[str, str | None]) -> bytes:
        """Authenticate, decide on the ledger (logged either way), then return the bundle."""
        binary = record_bytes(record)
        try:
            who = self.authenticate("fetch", record, headers, b"")
        except Exception as error:  # every refused attempt is logged, even an unforeseen one
            reason = getattr(error, "ledger_reason", Reason.OTHER)
            claimed = claimed_requester(headers)
            self._log(binary, claimed, Reason(reason))
            self.on_denied("fetch", int(reason))
            raise
        stored = self.state.record(record)
        if stored is None:  # nothing to release: logged as a denial
            self._log(binary, who.requester, Reason.OTHER)
            self.on_denied("fetch", int(Reason.OTHER))
            raise NotFound(f"record {record} is not held by this gateway")
        via = self.locked(lambda: self.studies.via(record, stored.owner, who.requester))
        result = self._log(binary, who.requester, Reason.NONE, via)
        if not result.allowed:
            self.on_denied("fetch", result.reason)
            raise AccessDenied(f"access denied by the ledger ({Reason.label(result.reason)})")
        return self._bundle(stored, who.requester)

    def _log(
        self, record: bytes, who: str, reason: Reason, via: bytes | None = None
    ) -> AccessResult:
        """Log a read attempt of ``record`` (through the study record ``via``, if given)."""
        self.audit_index.touch(record)
        return self.locked(lambda: self.records.authorize_fetch(record, who, reason, via))

    def log_refusal(
        self, attempted: AccessType, action: str, record: str, headers: Headers
    ) -> None:
        """Log a refused ``action`` (grant, revoke, audit) as a denied attempt of that kind,
        under the requester it claims (an unverified claim when its signature did not hold)."""
        reason = refusal_reason()
        claimed, binary = claimed_requester(headers), record_bytes(record)
        self.audit_index.touch(binary)
        self.locked(lambda: self.records.report_refusal(binary, claimed, attempted, reason))
        self.on_denied(action, int(reason))

    def _as_owner(
        self, action: str, kind: AccessType, record: str, headers: Headers, body: bytes
    ) -> StoredRecord:
        """Authenticate ``action`` by the record's owner; a refusal is logged first."""
        try:
            return self._owned(record, self.authenticate(action, record, headers, body).requester)
        except (AccessDenied, ReplayDetected):
            self.log_refusal(kind, action, record, headers)
            raise

    def header(self, record: str, headers: Mapping[str, str | None]) -> bytes:
        """The envelope header of a record, for its owner to re-wrap the file key for a
        grantee (signed as a ``grant`` with an empty body). Only the header leaves: the owner's
        grant is what the ledger records, not a read of the record."""
        stored = self._as_owner("grant", AccessType.GRANT, record, headers, b"")
        with self.store.get(stored.envelope_cid) as stream:
            return envelope.read_header(stream).encoded

    def _bundle(self, stored: StoredRecord, requester: str) -> bytes:
        record = stored.manifest_cid
        manifest_text = self._manifest(record)
        chain_record = self._ledger_record(record)
        grant_cid = self.state.grant_cid(record, requester)
        meta = {
            "manifest": manifest_text.decode("utf-8"),
            "grant": None if grant_cid is None else read_all(self.store, grant_cid).decode(),
            "record": {
                "h1": chain_record.image_hash.hex(),
                "h3": chain_record.h3.hex(),
                "pixel_digest": chain_record.pixel_digest.hex(),
            },
        }
        return wire.pack(meta, read_all(self.store, stored.envelope_cid))

    def _manifest(self, record: str) -> bytes:
        """A record's manifest. Its CID is its SHA-256, checked by the store's verified read, so
        the bytes can never change: the most recently used ones are kept in memory. (The
        envelope is read from the store on every fetch.)"""
        cached = self._manifests.get(record)
        if cached is None:
            cached = read_all(self.store, record)
            if len(self._manifests) >= _MANIFESTS_KEPT:
                self._manifests.pop(next(iter(self._manifests)))
            self._manifests[record] = cached
        return cached

    def _ledger_record(self, record: str) -> Record:
        """The record's hashes on the ledger. A record can never be overwritten on chain (the
        contract refuses a second storeImage, an anchored batch cannot change), so after the
        first read they are served from memory (the last :data:`_RECORDS_KEPT` read)."""
        cached = self._records.get(record)
        if cached is None:
            cached = self.locked(lambda: self.ledger.get_record(cid_bytes(record)))
            if len(self._records) >= _RECORDS_KEPT:  # the oldest first read goes first
                self._records.pop(next(iter(self._records)))
            self._records[record] = cached
        return cached

    # --- writing

    def upload(self, headers: Mapping[str, str | None], body: bytes) -> dict[str, Any]:
        """Authenticate an upload, then store, record and grant it (:meth:`register_upload`)."""
        meta, payload = wire.unpack(body)
        manifest_bytes, defer = upload_fields(meta)
        record = cid_of(io.BytesIO(manifest_bytes))
        who = self.authenticate("upload", record, headers, body)
        registration = self.register_upload(
            manifest_bytes, payload, who.requester, cid=record, defer=defer
        )
        return {
            "manifest_cid": registration.manifest_cid,
            "envelope_cid": registration.envelope_cid,
            "ledger": receipt_json(registration.receipt),
            "granted": list(registration.granted),
        }

    def register_upload(
        self,
        manifest_bytes: bytes,
        payload: bytes,
        uploader: str,
        *,
        cid: str | None = None,
        defer: bool = False,
    ) -> Registration:
        """The half of an upload after authentication (the DICOM receiver's way in, as
        :class:`~scanseal.transfer.Registrar`; ``cid``: the manifest's, when already known):
        ``uploader`` must have signed the manifest and be registered; envelope and manifest are
        stored, the record registered and its recipients granted — or, with ``defer``, noted
        as awaiting its study record, which grants and announces it (``_study_grants``).
        Crash-safe: the pending row is on disk before the ledger hears of the record; a repeat
        finds it registered."""
        with self.grants.upload():  # a grant flush meanwhile waits for this one's pairs
            manifest_cid = cid_of(io.BytesIO(manifest_bytes)) if cid is None else cid
            manifest = signed_manifest(manifest_bytes)
            if manifest.uploader.address != uploader:
                raise AccessDenied("only the manifest's uploader may upload it")
            self.members.seen(r.address for r in manifest.recipients)
            self.members.check_recipients(manifest)
            if self.locked(lambda: self.ledger.identity_of(uploader)) is None:
                raise AccessDenied(f"{uploader} is not a registered identity")
            envelope_cid = store_sealed(self.store, manifest, manifest_bytes, payload)
            stored = StoredRecord(manifest_cid, envelope_cid, uploader)
            awaiting = defer and self.state.record(manifest_cid) is None  # not granted before
            self.state.begin_upload(stored, awaiting=awaiting)  # on disk before the ledger
            self.audit_index.touch(cid_bytes(manifest_cid))
            receipt = self.locked(
                lambda: self.records.register(manifest_cid, manifest, grant=False)
            )
            granted = () if defer else tuple(r.address for r in manifest.recipients)
            if granted:
                self.grants.grant(cid_bytes(manifest_cid), granted)  # shared with others
            self._finish_upload(stored, manifest, granted=bool(granted))
            return Registration(manifest_cid, envelope_cid, receipt, granted)

    def _finish_upload(self, stored: StoredRecord, manifest: Manifest, *, granted: bool) -> None:
        """After the ledger holds the record (and, if ``granted``, its recipients' grants):
        mark it in the audit index (a sync since the upload's first mark, or a crash, may have
        missed its ledger entries), announce it unless it awaits its study, then hold it (ends
        the pending row). Each step is idempotent, so a retry or the start-up reconciliation
        may repeat them."""
        record = stored.manifest_cid
        self.audit_index.touch(cid_bytes(record))
        waiting = bool(self.state.awaiting_study([record]))
        if waiting and granted:  # sent again without deferring: granted now
            self.state.end_awaiting([record])
        if granted or not waiting:
            self.inbox.add(record, [r.address for r in manifest.recipients])
        self.state.add_record(stored)

    def grant(self, record: str, headers: Mapping[str, str | None], body: bytes) -> dict[str, Any]:
        """Relay an owner's signed grant: check it, publish it, record it on the ledger."""
        stored = self._as_owner("grant", AccessType.GRANT, record, headers, body)
        issued, grant_cid = accept_grant(self.store, stored, body)
        binary = cid_bytes(record)
        self.audit_index.touch(binary)

        def on_chain() -> Receipt | None:
            # The grant object is held and announced before the chain grant: a grant the
            # ledger holds always has its object here. Until the chain grant is mined these
            # rows are inert — every release is decided by the ledger.
            self.hold_grant(issued, grant_cid)
            return self.records.grant(binary, to_checksum_address(issued.grantee))

        receipt = self.locked(on_chain)
        return {
            "grant_cid": grant_cid,
            "ledger": None if receipt is None else receipt_json(receipt),
        }

    def hold_grant(self, issued: Grant, grant_cid: str) -> None:
        """Serve ``issued`` to its grantee and announce it (ledger lock held: card checked)."""
        grantee = to_checksum_address(issued.grantee)
        if self.ledger.identity_of(grantee) != issued.grantee_card_sha256:
            raise InvalidInput(f"{grantee} is not registered with the card the grant names")
        self.state.set_grant(issued.record, grantee, grant_cid)
        self.inbox.add(issued.record, [grantee], again=True)

    def revoke(self, record: str, headers: Mapping[str, str | None], body: bytes) -> dict[str, Any]:
        """Relay an owner's revocation; the grant object is no longer served."""
        self._as_owner("revoke", AccessType.REVOKE, record, headers, body)
        grantee = wire.text_field(wire.unpack_json(body), "grantee")
        if grantee is None or not is_address(grantee):
            raise InvalidInput("revoke needs the grantee's address")
        grantee = to_checksum_address(grantee)
        binary = cid_bytes(record)
        self.audit_index.touch(binary)
        receipt = self.locked(lambda: self.records.revoke(binary, grantee))
        self.state.end_grant(record, grantee)  # an active row the ledger revoked is never served
        return {"revoked": grantee, "ledger": None if receipt is None else receipt_json(receipt)}

    def _owned(self, record: str, requester: str) -> StoredRecord:
        stored = self.state.record(record)
        if stored is None:
            raise NotFound(f"record {record} is not held by this gateway")
        if stored.owner != requester:
            raise AccessDenied(f"{requester} is not the owner of record {record}")
        return stored

    # --- audit and verify

    def verify(self, record: str) -> dict[str, Any]:
        """Public checks of a stored record against its manifest and the ledger (no key), the
        signed manifest (a client reads the screen's verdict from it) and that verdict."""
        record_bytes(record)
        report = self.records.verify_record(record, LedgerHashes.of(self._ledger_record(record)))
        verdict, manifest = screen_verdict(report.manifest), read_all(self.store, record).decode()
        screening = None if verdict is None else verdict.to_dict()
        answer = {"record": record, "checks": report.checks, "manifest": manifest}
        return {**answer, "screening": screening}
