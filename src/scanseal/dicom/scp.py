"""The Storage SCP: what a modality or a PACS pushes is screened, sealed and registered.

Each received instance (the bytes the sender encoded, unchanged) is sealed by the receiving
identity (the gateway's) for the recipients the calling AE is routed to and handed to a
:class:`~scanseal.transfer.Registrar` (the gateway), which checks the manifest, stores and
registers; since registration checks every recipient before it writes to the ledger, a refused
instance leaves no record behind. When Success (0000) is answered depends on
``[dicom] acknowledge`` (docs/DICOM.md):

- ``durable`` (the default, store-and-forward as a PACS does): the header is parsed and checked
  at once (what cannot be parsed, has no SOP Instance UID, names another SOP Class than the
  request, or has no route is refused as before), the instance written to the encrypted spool
  (:mod:`scanseal.dicom.spool`) and Success answered; the SCP's workers seal and register it
  after, in arrival order, and a restart registers what the spool still holds. A full spool
  makes a C-STORE wait up to ``spool_wait_seconds``, then answers A700.
- ``registered``: Success once the instance is registered and indexed; any failure answers its
  failure status with an ErrorComment.

Every stored instance logs one line with the tamper screen's verdict, read from the manifest
just signed: a warning naming the SOP Instance UID and the record when the screen flagged it,
an info line otherwise (``scanseal serve`` shows both on stderr).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.transport import ThreadedAssociationServer

from scanseal._disk import disk_error
from scanseal.crypto.identity import Identity
from scanseal.dicom._acceptors import Acceptors, Setup
from scanseal.dicom._ae import Contexts, storage_ae
from scanseal.dicom._drain import Drain
from scanseal.dicom._logs import STOW as STOW  # what stow.py and the tests import from here
from scanseal.dicom._logs import handed_down
from scanseal.dicom._logs import instance_fields as instance_fields
from scanseal.dicom._logs import log_refused as log_refused
from scanseal.dicom._logs import log_to_stderr as log_to_stderr
from scanseal.dicom._logs import log_verdict as log_verdict
from scanseal.dicom.config import DicomConfig
from scanseal.dicom.index import DicomIndex, Instance
from scanseal.dicom.spool import Entry, Spool, Spooled
from scanseal.errors import (
    InvalidInput,
    LedgerUnavailable,
    ScanSealError,
    StorageUnavailable,
    Unreadable,
)
from scanseal.ingest import IngestedImage, read_image_bytes
from scanseal.storage import cid_of
from scanseal.transfer import Manifest, Registrar, seal_for_upload

SUCCESS: Final = 0x0000
OUT_OF_RESOURCES: Final = 0xA700
DATASET_MISMATCH: Final = 0xA900
REFUSED_BY_SCREEN: Final = 0xC000
FAILED: Final = 0xC001
CANNOT_UNDERSTAND: Final = 0xC210

YIELD_SECONDS: Final = 0.1
"""How recent a C-STORE answer makes the workers wait (``durable``: ingest first)."""
YIELD_AT_MOST: Final = 10.0
"""The oldest spooled instance's wait beyond which the workers no longer wait for a push."""
_log = logging.getLogger(__name__)
_SHM: Final = "/dev/shm"  # noqa: S108 (a private mkdtemp directory inside it, mode 0700)
_SCRATCH: Final = _SHM if os.access(_SHM, os.W_OK | os.X_OK) else None
"""Where an instance's envelope and manifest are staged while it is sealed (a private
directory, removed at once): a memory file system when there is one, so that the staging costs
no disk writes; the system's temporary directory otherwise. The plaintext is not staged: it is
ingested from the received bytes."""
_NAME: Final = "instance.dcm"
"""What a received instance is called in ingest's refusals (it has no file name)."""


@dataclass(frozen=True)
class Received:
    """One received Part 10 instance, parsed once (:func:`read_received`): the header both
    ways in check, log and index, and the image sealing screens, hashes and encrypts."""

    header: Dataset
    image: IngestedImage | None
    refusal: ScanSealError | None = None
    """Why ingest refused the instance (raised when it is sealed, after the caller's own
    checks of the header, in the order they always ran)."""


def read_received(raw: bytes) -> Received:
    """Ingest ``raw`` once, from memory: header parsed and validated, nothing decoded yet.

    An instance pydicom cannot parse at all (or without a SOP Instance UID) raises Unreadable,
    as :func:`parse_header` does; one it parses but ingest refuses (a truncated Pixel Data, say)
    is returned with that refusal, for :meth:`Receiver.seal` to raise."""
    try:
        image = read_image_bytes(raw, _NAME)
    except ScanSealError as error:
        return Received(parse_header(raw), None, error)
    header = image.header()
    if header is None:  # read_image_bytes reads DICOM only
        raise Unreadable("the data set cannot be parsed")
    _check_uid(header)
    return Received(header, image)


class Receiver:
    """What both ways in (C-STORE and STOW-RS) do with one instance: seal, upload, index."""

    def __init__(
        self, registrar: Registrar, identity: Identity, config: DicomConfig, index: DicomIndex
    ) -> None:
        self.registrar = registrar
        self.identity = identity
        self.config = config
        self.index = index
        self.observe: Callable[[str, int, float], None] = lambda _via, _status, _seconds: None
        """Told of every instance answered: the way in, the status and the seconds it took
        (``scanseal serve`` counts them for /metrics)."""
        self.recorded: Callable[[str], bool] = lambda _cid: False
        """Whether the gateway holds a record of this manifest CID (``scanseal serve`` asks its
        state): a spooled instance whose noted record exists is not sealed a second time."""
        self.ready: Callable[[], bool] = lambda: True
        """Whether the gateway finished its warm-up (the workers start after it)."""
        self.pending: Callable[[str], tuple[bytes, bytes] | None] = lambda _cid: None
        """The manifest and envelope of an upload of this manifest CID that the gateway began
        and did not finish (``scanseal serve`` reads them from its store): a spooled instance
        whose noted record is such an upload is registered with those same bytes, never
        sealed again (a second seal would be a second record once the first one completes)."""

    def receive(self, received: Received, calling: str) -> str:
        """Seal a received instance for the route's recipients and register it; returns the
        record's manifest CID once it is registered and indexed."""
        return self.register(self.seal(received, calling), calling)

    def seal(self, received: Received, calling: str) -> Sealed:
        """Screen and seal a received instance for ``calling``'s recipients, as the gateway's
        identity: the half of :meth:`receive` that needs no lock (the SCP runs it in its worker
        pool). The image ingested from the received bytes is the one screened, hashed and
        encrypted: the instance is parsed once and its pixels decoded once."""
        if received.image is None:
            raise received.refusal or Unreadable("the data set cannot be parsed")
        cards = self.config.cards_for(calling)
        with tempfile.TemporaryDirectory(prefix="scanseal-dicom-", dir=_SCRATCH) as scratch:
            sealed = seal_for_upload(received.image, cards, self.identity, Path(scratch))
            manifest, payload = sealed.manifest_path.read_bytes(), sealed.envelope.read_bytes()
        return Sealed(manifest, payload, sealed.manifest, received.header)

    def register(self, sealed: Sealed, calling: str) -> str:
        """Register a sealed instance with the registrar, index it and log its verdict; the
        record's manifest CID."""
        registration = self.registrar.register_upload(
            sealed.manifest_bytes, sealed.envelope, self.identity.address
        )
        cid, header = registration.manifest_cid, sealed.header
        uid = self._indexed(header, calling, cid)
        stored = f"instance {uid} from {calling} stored as record {cid}"
        fields = instance_fields(calling, header, SUCCESS) | {"record": cid}
        log_verdict(sealed.manifest, stored, fields)
        return cid

    def prepare(self, spool: Spool, entry: Entry, spooled: Spooled) -> Sealed | None:
        """A spooled instance sealed, with its record's manifest CID noted beside the entry
        before it is registered; None when the record noted before a restart exists already
        (then the instance is only indexed: it is never registered twice)."""
        received = read_received(spooled.raw)
        noted = spool.record_of(entry)
        if noted is not None and self.recorded(noted):
            uid = self._indexed(received.header, spooled.calling, noted)
            fields = instance_fields(spooled.calling, received.header, SUCCESS)
            fields["record"] = noted
            _log.info("instance %s from %s was registered as record %s before the restart",
                      uid, spooled.calling, noted, extra={"fields": fields})  # fmt: skip
            return None
        begun = None if noted is None else self.pending(noted)
        if begun is not None:  # its upload began before the restart: the same bytes again
            manifest_bytes, envelope = begun
            manifest = Manifest.from_json(manifest_bytes)
            return Sealed(manifest_bytes, envelope, manifest, received.header)
        sealed = self.seal(received, spooled.calling)
        spool.note_record(entry, cid_of(io.BytesIO(sealed.manifest_bytes)))
        return sealed

    def uid_of(self, raw: bytes) -> str | None:
        """The SOP Instance UID of received bytes, for a log line (None when unreadable)."""
        return instance_fields("", header_or_none(raw), 0)["sop_instance_uid"]  # type: ignore[no-any-return]

    def _indexed(self, header: Dataset, calling: str, cid: str) -> str:
        """Index a registered instance under its record; its SOP Instance UID."""
        uid = str(header.SOPInstanceUID)
        study, series = header.get("StudyInstanceUID", ""), header.get("SeriesInstanceUID", "")
        self.index.add(Instance(uid, str(study), str(series), cid, calling))
        return uid


@dataclass(frozen=True)
class Sealed:
    """One received instance sealed for upload, not registered yet."""

    manifest_bytes: bytes
    envelope: bytes
    manifest: Manifest
    header: Dataset


class StorageSCP:
    """A pynetdicom server bound to one gateway; ``start`` returns at once, ``stop`` joins.

    With a ``spool`` it acknowledges instances once they are durable in it (``acknowledge =
    "durable"``) and its workers register them; without, once they are registered."""

    def __init__(self, receiver: Receiver, spool: Spool | None = None) -> None:
        self.receiver = receiver
        self.config = receiver.config
        self.spool = spool
        self._ae = storage_ae(self.config)
        self._server: Any = None
        self.acceptors: Acceptors | None = None
        self._workers = ThreadPoolExecutor(self.config.workers, thread_name_prefix="dicom-seal")
        self.drain = None if spool is None else Drain(spool, receiver, self.config.workers)
        self._answered = 0.0
        """When the last C-STORE was answered (``time.monotonic()``)."""
        if self.drain is not None:
            self.drain.yield_to = self._receiving

    @property
    def port(self) -> int:
        if self.acceptors is not None:
            return int(self.acceptors.listener.getsockname()[1])
        return int(self._server.server_address[1]) if self._server else self.config.port

    @property
    def listening(self) -> bool:
        """Whether the server runs with its socket open (what ``/v1/health`` reports)."""
        if self.acceptors is not None:
            return self.acceptors.listener.fileno() >= 0
        return self._server is not None and self._server.socket.fileno() >= 0

    def start(self) -> StorageSCP:
        """Listen; the workers start on what the spool holds from before (a restart). With a
        spool and ``acceptors`` > 0, associations are answered in acceptor processes."""
        if self.spool is not None and self.drain is not None and self.config.acceptors > 0:
            self.acceptors = self._start_acceptors(self.spool, self.drain)
        else:
            handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store)]
            self._server = self._ae.make_server(
                (self.config.host, self.config.port),
                evt_handlers=handlers,
                server_class=_NoDelayServer,
            )
            self._server.contexts = Contexts(self._server.contexts)
            self._ae._servers.append(self._server)  # what start_server does: shutdown() expects it
            serving = threading.Thread(
                target=self._server.serve_forever, name="dicom-scp", daemon=True
            )
            serving.start()
        self._workers.submit(_load_detector)  # its first use would cost a C-STORE seconds
        if self.drain is not None:
            self.drain.start()
        return self

    def _start_acceptors(self, spool: Spool, drain: Drain) -> Acceptors:
        host = self.config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, self.config.port), family=family, backlog=64)
        card = self.receiver.identity.card.to_json()

        def setup(slot: int) -> Setup:
            formatter, level = handed_down()
            return Setup(self.config, card, str(spool.directory), slot, formatter, level)

        acceptors = Acceptors(
            listener, setup, spool, drain.submit, self._observed, self.config.acceptors
        )
        acceptors.wait_seconds = self.config.spool_wait_seconds
        return acceptors.start()

    def _observed(self, status: int, seconds: float) -> None:
        """A C-STORE an acceptor process answered."""
        self.receiver.observe("C-STORE", status, seconds)
        self._answered = time.monotonic()

    def stop(self) -> None:
        if self.acceptors is not None:
            self.acceptors.stop()  # every instance they acknowledged is queued by then
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._workers.shutdown(wait=True)  # an instance being sealed is finished, not cut
        if self.drain is not None:
            self.drain.stop()  # the same; what is still spooled waits for the next start

    def _on_store(self, event: Any) -> Dataset:
        started = time.perf_counter()
        status = self._store(event)
        self.receiver.observe("C-STORE", int(status.Status), time.perf_counter() - started)
        self._answered = time.monotonic()
        return status

    def _receiving(self) -> bool:
        """Whether the workers should let arriving instances go first: a C-STORE was answered
        within the last :data:`YIELD_SECONDS`, the spool holds less than half its bound and
        its oldest entry has waited less than :data:`YIELD_AT_MOST` (so that a long push
        still gets registered while it lasts). The sealing threads hold the GIL for most of
        their work: beside them an answer took two to three times as long."""
        if self.spool is None or time.monotonic() - self._answered > YIELD_SECONDS:
            return False
        status = self.spool.status()
        oldest = status.oldest_seconds or 0.0
        return 2 * status.depth < self.spool.max_instances and oldest < YIELD_AT_MOST

    def _store(self, event: Any) -> Dataset:
        """One C-STORE, answered with its status: Success once the instance is spooled or
        registered (:meth:`_spool_one`, :meth:`_register_one`), a failure status otherwise."""
        calling = str(event.assoc.requestor.ae_title).strip()
        raw: bytes | None = None
        try:
            raw = bytes(event.encoded_dataset())
            expected = str(event.request.AffectedSOPClassUID)
            if self.spool is not None and self.drain is not None:
                return self._spool_one(self.spool, self.drain, (raw, calling, expected))
            return self._register_one(raw, calling, expected)
        except ScanSealError as error:
            log_refused(calling, header_or_none(raw), status_for(error), error.reason)
            return make_status(status_for(error), error.reason)
        except BaseException as error:  # a bug (or a native decoder's panic) still answers
            fields = instance_fields(calling, header_or_none(raw), FAILED)  # never Success
            _log.exception("C-STORE from %s failed", calling, extra={"fields": fields})
            return make_status(FAILED, f"internal error: {type(error).__name__}")

    def _spool_one(self, spool: Spool, drain: Drain, request: tuple[bytes, str, str]) -> Dataset:
        """``durable``: the header checked here (the refusals a header shows are answered as
        before), the instance written to the spool, Success; the workers register it."""
        raw, calling, expected = request
        received = checked(raw, calling, expected, self.config)
        if isinstance(received, Dataset):
            return received
        if not spool.reserve(len(raw), self.config.spool_wait_seconds):
            reason = "the spool is full; send again later"
            log_refused(calling, received.header, OUT_OF_RESOURCES, reason)
            return make_status(OUT_OF_RESOURCES, reason)
        try:
            entry = spool.put(raw, calling, len(raw))
        except OSError as error:  # the spool's disk: full, read-only, gone
            raise disk_error(error, store=True) from None
        drain.submit(entry)
        return make_status(SUCCESS, None)

    def _register_one(self, raw: bytes, calling: str, expected: str) -> Dataset:
        """``registered``: screened and sealed in the worker pool (at most ``workers`` at once),
        then registered from this association's thread, so that the registrations of several
        associations can share one grant transaction."""
        sealed = self._workers.submit(self._seal, raw, calling, expected).result()
        if isinstance(sealed, Dataset):
            return sealed
        self.receiver.register(sealed, calling)
        return make_status(SUCCESS, None)  # Receiver.register logged the instance and its verdict

    def _seal(self, raw: bytes, calling: str, expected: str) -> Sealed | Dataset:
        """The sealed instance, or the status refusing one whose SOP Class is not the one the
        request named."""
        received = read_received(raw)
        mismatch = _mismatch(received.header, expected, calling)
        return mismatch if mismatch is not None else self.receiver.seal(received, calling)


def checked(raw: bytes, calling: str, expected: str, config: DicomConfig) -> Received | Dataset:
    """What ``durable`` checks before an instance is spooled (in the gateway or an acceptor
    process): it parses, names the request's SOP Class (else the A900 status, logged), ingest
    takes it and the calling AE's route has its cards; a refusal raises."""
    received = read_received(raw)
    mismatch = _mismatch(received.header, expected, calling)
    if mismatch is not None:
        return mismatch
    if received.refusal is not None:
        raise received.refusal
    config.cards_for(calling)  # a route whose card is missing is refused now
    return received


def _mismatch(header: Dataset, expected: str, calling: str) -> Dataset | None:
    """The A900 status (logged) for an instance whose SOP Class is not the request's."""
    if header.get("SOPClassUID") == expected:
        return None
    reason = "SOP Class UID differs from the request's"
    log_refused(calling, header, DATASET_MISMATCH, reason)
    return make_status(DATASET_MISMATCH, reason)


def header_or_none(raw: bytes | None) -> Dataset | None:
    """The header of a refused instance for its log line, or None when it cannot be read."""
    if raw is None:
        return None
    try:
        return parse_header(raw)
    except ScanSealError:
        return None


def _load_detector() -> None:
    """Load the tamper detector (onnxruntime and the model) before the first C-STORE needs it;
    a failure here is the first C-STORE's to report."""
    try:
        from scanseal.detect import default_detector

        default_detector()
    except Exception as error:  # the C-STORE that screens reports it
        _log.warning("tamper detector not loaded ahead: %s", error)


class _NoDelayServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with TCP_NODELAY on every accepted association: the
    C-STORE-RSP is a small segment that Nagle's algorithm would hold back until the sender's
    next PDU is acknowledged (a delayed ACK of up to 40 ms per instance)."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


def parse_header(raw: bytes) -> Dataset:
    """The data set without pixels; InvalidInput when it is not DICOM."""
    try:
        header = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
    except Exception:  # pydicom raises many kinds on garbage: all mean "cannot understand"
        raise Unreadable("the data set cannot be parsed") from None
    _check_uid(header)
    return header


def _check_uid(header: Dataset) -> None:
    """Unreadable unless the data set holds a SOP Instance UID (what every log line and the
    index name the instance by)."""
    try:
        uid = header.SOPInstanceUID
    except Exception:  # missing, or a value pydicom cannot decode
        raise Unreadable("the data set cannot be parsed") from None
    if not uid:
        raise Unreadable("the data set has no SOP Instance UID")


def status_for(error: ScanSealError) -> int:
    """The C-STORE failure status (also STOW's FailureReason) for a refusal."""
    if isinstance(error, StorageUnavailable | LedgerUnavailable):
        return OUT_OF_RESOURCES  # worth a retry later
    if isinstance(error, Unreadable):
        return CANNOT_UNDERSTAND
    if isinstance(error, InvalidInput):
        return REFUSED_BY_SCREEN
    return FAILED


def make_status(code: int, comment: str | None) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]  # LO: 64 characters at most
    return status
