"""The SCP's workers in ``durable`` mode: spooled instances sealed and registered, in order.

``workers`` threads take entries in arrival order (a restart first queues what the spool
held), each one opened, parsed, screened and sealed, its record's manifest CID noted beside the
entry; :data:`REGISTRARS` threads register what they sealed (the registrations under way share
a grant transaction: the gateway's batcher folds them), index and log it, then delete the
entry. A ledger or store
that is unavailable is retried with a doubling back-off (1 s up to a minute) until it answers
or the gateway stops (the entry stays spooled for the next start); any other refusal is
permanent: the entry goes to the quarantine, one warning line names its SOP Instance UID and
the reason, and the ``quarantined`` counter goes up.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from scanseal.dicom.spool import Entry, Spool, Spooled
from scanseal.errors import LedgerUnavailable, ScanSealError, StorageUnavailable

_log = logging.getLogger("scanseal.dicom.scp")
T = TypeVar("T")
REGISTRARS: Final = 4
"""Threads registering sealed instances at once (the gateway serializes the ledger work; the
grants of concurrent registrations share one transaction)."""
_YIELD_POLL: Final = 0.02
_FIRST_RETRY: Final = 1.0
_LAST_RETRY: Final = 60.0
_RETRIED: Final = (LedgerUnavailable, StorageUnavailable, OSError)
"""Faults of the dependencies (the ledger, the store, the gateway's own disk): retried."""


class Sealer(Protocol):
    """What the workers need of :class:`~scanseal.dicom.scp.Receiver`."""

    def ready(self) -> bool:
        """Whether the gateway finished its warm-up (pending uploads completed)."""
        ...

    def prepare(self, spool: Spool, entry: Entry, spooled: Spooled) -> Any:
        """The entry sealed and its record noted; None when it is registered already."""
        ...

    def register(self, sealed: Any, calling: str) -> str:
        """Register what :meth:`prepare` sealed; its record's manifest CID."""
        ...

    def uid_of(self, raw: bytes) -> str | None:
        """The SOP Instance UID of an instance, for its log line (None: unreadable)."""
        ...


@dataclass(frozen=True)
class _Job:
    """An entry sealed, its record noted, waiting for registration."""

    entry: Entry
    sealed: Any
    calling: str


class Drain:
    """The worker threads over one spool and one receiver: ``workers`` that seal, in arrival
    order, and :data:`REGISTRARS` that register what they sealed (more registrations at once
    put more grants into each of the batcher's transactions)."""

    def __init__(self, spool: Spool, receiver: Sealer, workers: int) -> None:
        self.spool = spool
        self.receiver = receiver
        self._queue: deque[Entry] = deque(spool.entries())
        self._ready = threading.Condition()
        self._sealed: queue.Queue[_Job] = queue.Queue(maxsize=REGISTRARS)
        self._stop = threading.Event()
        self.retries = 0
        """Attempts that found the ledger or the store unavailable (``/metrics``)."""
        self.yield_to: Callable[[], bool] = lambda: False
        """Whether the sealing threads should wait before the next entry: the SCP says so while
        instances arrive (the answers come first, as a PACS ingests first)."""
        self._sealers = [
            threading.Thread(target=self._seal_all, name=f"dicom-seal-{n}", daemon=True)
            for n in range(workers)
        ]
        self._registrars = [
            threading.Thread(target=self._register_all, name=f"dicom-register-{n}", daemon=True)
            for n in range(REGISTRARS)
        ]

    def start(self) -> Drain:
        if self._queue:
            _log.info("%d spooled instance(s) from before the restart are registered now",
                      len(self._queue))  # fmt: skip
        for thread in (*self._sealers, *self._registrars):
            thread.start()
        return self

    def submit(self, entry: Entry) -> None:
        with self._ready:
            self._queue.append(entry)
            self._ready.notify()

    def stop(self) -> None:
        """Finish the instances being sealed or registered; the others stay spooled for the
        next start (one sealed but not registered is sealed again then: its note names no
        record yet)."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        for thread in (*self._sealers, *self._registrars):
            thread.join()
        left = self.spool.status().depth
        if left:
            _log.info("%d acknowledged instance(s) stay spooled until the next start", left)

    def _next(self) -> Entry | None:
        with self._ready:
            while not self._queue and not self._stop.is_set():
                self._ready.wait()
            return None if self._stop.is_set() else self._queue.popleft()

    def _seal_all(self) -> None:
        while not self.receiver.ready() and not self._stop.wait(0.05):
            pass  # a record noted before a crash may be a pending upload the warm-up finishes
        while (entry := self._next()) is not None:
            while self.yield_to() and not self._stop.wait(_YIELD_POLL):
                pass
            job = self._attempt(entry, functools.partial(self._seal, entry))
            while job is not None and not self._stop.is_set():
                try:
                    self._sealed.put(job, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _seal(self, entry: Entry) -> _Job | None:
        spooled = self.spool.open(entry)
        sealed = self.receiver.prepare(self.spool, entry, spooled)
        if sealed is None:  # registered before a restart: indexed now
            self.spool.remove(entry)
            return None
        return _Job(entry, sealed, spooled.calling)

    def _register_all(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._sealed.get(timeout=0.1)
            except queue.Empty:
                continue
            self._attempt(job.entry, functools.partial(self._register, job))

    def _register(self, job: _Job) -> None:
        self.receiver.register(job.sealed, job.calling)
        self.spool.remove(job.entry)

    def _attempt(self, entry: Entry, work: Callable[[], T]) -> T | None:
        """``work`` for one entry, retried while the ledger, the store or the disk is
        unavailable (a registration retried registers the same manifest again, which is
        idempotent: never a second record); a permanent refusal quarantines the entry. None
        when it did not succeed (quarantined, or the gateway stops: it stays spooled)."""
        delay = _FIRST_RETRY
        while not self._stop.is_set():
            try:
                return work()
            except _RETRIED as error:
                self.retries += 1
                reason = error.reason if isinstance(error, ScanSealError) else str(error)
                _log.warning("spooled instance %s not registered yet: %s; retrying in %.0f s",
                             entry.name, reason, delay)  # fmt: skip
                if self._stop.wait(delay):
                    return None
                delay = min(2 * delay, _LAST_RETRY)
            except ScanSealError as error:
                self._quarantine(entry, error.reason)
                return None
            except Exception as error:  # a bug (or a decoder's panic): kept, never lost
                _log.exception("spooled instance %s failed", entry.name)
                self._quarantine(entry, f"internal error: {type(error).__name__}")
                return None
        return None

    def _quarantine(self, entry: Entry, reason: str) -> None:
        uid, calling = None, None
        try:
            spooled = self.spool.open(entry)
            calling = spooled.calling
            uid = self.receiver.uid_of(spooled.raw)
        except ScanSealError:
            pass
        try:
            self.spool.move_to_quarantine(entry)
        except OSError as error:  # it stays in the spool, tried again at the next start
            _log.error("spooled instance %s cannot be quarantined: %s", entry.name, error)
            return
        fields = {"via": "C-STORE", "calling_ae": calling, "sop_instance_uid": uid,
                  "reason": reason, "spool_entry": entry.name}  # fmt: skip
        _log.warning("instance %s from %s quarantined after Success was answered: %s",
                     uid, calling, reason, extra={"fields": fields})  # fmt: skip
