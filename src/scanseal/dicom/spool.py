"""The Storage SCP's spool: received instances, durable and encrypted, until they are registered.

With ``[dicom] acknowledge = "durable"`` a C-STORE is answered Success once its instance is an
entry here; the SCP's workers then seal and register it and delete the entry. Each entry is one
ScanSeal envelope (docs/FORMAT.md) for the gateway's own identity: a random file key is wrapped
once to the identity's card when the spool opens, and every entry carries that stanza under its
own random salt and nonce prefix (so each entry has its own payload and header keys), which
:func:`scanseal.crypto.envelope.open_envelope` opens with the identity's keys, also after a
restart or a key rotation. The plaintext inside is the calling AE title (2-byte length, ASCII)
followed by the Part 10 bytes as received. No plaintext is ever written to disk, under any name.

An entry is written to ``NAME.tmp`` (0600, created exclusively), fsynced, renamed to
``NAME.sealed`` and the directory fsynced (one directory fsync serves every rename that came
before it: concurrent associations share it). Names are the arrival time in nanoseconds and a
counter, so sorting them is arrival order. A ``NAME.cid`` beside an entry holds the manifest CID
of the record the entry is about to be registered as (written durably before registration): a
restart that finds it does not seal the instance a second time (docs/DICOM.md). An entry that
can never be registered is moved to ``quarantine/``, still encrypted. ``*.tmp`` files left by a
crash were never acknowledged and are removed when the spool opens.
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scanseal._disk import fsync
from scanseal.crypto.envelope import build_header, encrypt_payload, new_file_key, open_envelope
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.crypto.stanzas import DEFAULT_KIND
from scanseal.errors import IntegrityError

SEALED: Final = ".sealed"
RECORD: Final = ".cid"
TEMPORARY: Final = ".tmp"
QUARANTINE: Final = "quarantine"
_CALLING: Final = struct.Struct(">H")
_MAX_CID: Final = 1024
_NAME: Final = re.compile(r"[0-9]{20}-[0-9]{6}")
"""An entry's name: arrival time in nanoseconds, a counter (any other file is left alone)."""


@dataclass(frozen=True)
class Entry:
    """One spooled instance: its file name (without suffix), its size on disk and when it was
    received (``time.time()`` seconds, from its name)."""

    name: str
    size: int

    @property
    def received(self) -> float:
        return int(self.name.split("-", 1)[0]) / 1e9


@dataclass(frozen=True)
class Spooled:
    """An entry opened: who sent the instance, and its bytes as received."""

    calling: str
    raw: bytes


@dataclass(frozen=True)
class SpoolStatus:
    """What ``/v1/health`` and ``/metrics`` show of the spool."""

    depth: int
    bytes: int
    oldest_seconds: float | None
    quarantined: int

    def health(self) -> dict[str, object]:
        """The spool as ``/v1/health`` shows it under ``scp``."""
        return {"depth": self.depth, "bytes": self.bytes, "oldest_seconds": self.oldest_seconds,
                "quarantined": self.quarantined}  # fmt: skip


class SpoolCollector(Collector):
    """The spool for ``/metrics``, read at each scrape: ``scanseal_scp_spool_instances``,
    ``_spool_bytes``, ``_spool_oldest_seconds``, ``scanseal_scp_quarantined`` and
    ``scanseal_scp_retries`` (attempts that found the ledger or the store unavailable)."""

    def __init__(self, status: Callable[[], SpoolStatus], retries: Callable[[], int]) -> None:
        self._status = status
        self._retries = retries

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        yield GaugeMetricFamily(
            "scanseal_scp_spool_instances", "Acknowledged instances not registered yet",
            value=status.depth,
        )  # fmt: skip
        yield GaugeMetricFamily("scanseal_scp_spool_bytes", "Bytes of the spooled instances",
                                value=status.bytes)  # fmt: skip
        yield GaugeMetricFamily("scanseal_scp_spool_oldest_seconds",
                                "How long the oldest spooled instance has waited (0: none)",
                                value=status.oldest_seconds or 0.0)  # fmt: skip
        for name, text, value in (
            ("scanseal_scp_quarantined", "Acknowledged instances that could not be registered",
             status.quarantined),
            ("scanseal_scp_retries", "Registrations retried: ledger or store unavailable",
             self._retries()),
        ):  # fmt: skip
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family


class Spool:
    """The directory of entries of one gateway; thread-safe. ``max_instances`` and
    ``max_bytes`` bound it (:meth:`reserve`); an instance larger than the whole bound still
    fits into an empty spool."""

    def __init__(
        self, directory: Path, identity: Identity, max_instances: int, max_bytes: int
    ) -> None:
        self.directory = directory
        self.quarantine_dir = directory / QUARANTINE
        self.quarantine_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._identity = identity
        self.writer = SpoolWriter(directory, identity.card, slot=0)
        self.max_instances, self.max_bytes = max_instances, max_bytes
        self._lock = threading.Condition()
        self._live: dict[str, Entry] = {}
        self._reserved: list[int] = []
        self.quarantined = sum(1 for p in self.quarantine_dir.iterdir() if p.suffix == SEALED)
        for entry in self._scan():
            self._live[entry.name] = entry

    @classmethod
    def at(cls, state_dir: Path, identity: Identity, max_instances: int, max_mib: int) -> Spool:
        """The spool under a gateway's state directory (``dicom-spool``)."""
        return cls(state_dir / "dicom-spool", identity, max_instances, max_mib << 20)

    def entries(self) -> list[Entry]:
        """Every entry, in arrival order (what a restart replays)."""
        with self._lock:
            return sorted(self._live.values(), key=lambda entry: entry.name)

    def status(self) -> SpoolStatus:
        with self._lock:
            oldest = min((e.received for e in self._live.values()), default=None)
            size = sum(e.size for e in self._live.values()) + sum(self._reserved)
            depth = len(self._live) + len(self._reserved)
            quarantined = self.quarantined
        age = None if oldest is None else round(max(0.0, time.time() - oldest), 3)
        return SpoolStatus(depth, size, age, quarantined)

    def reserve(self, size: int, wait: float) -> bool:
        """Hold room for one instance of ``size`` bytes, waiting at most ``wait`` seconds for
        the workers to make some; False when there is none (the C-STORE answers A700)."""
        deadline = time.monotonic() + wait
        with self._lock:
            while not self._room(size):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            self._reserved.append(size)
        return True

    def _room(self, size: int) -> bool:
        depth = len(self._live) + len(self._reserved)
        if depth == 0:
            return True
        used = sum(e.size for e in self._live.values()) + sum(self._reserved)
        return depth < self.max_instances and used + size <= self.max_bytes

    def put(self, raw: bytes, calling: str, size: int) -> Entry:
        """Write one received instance as a durable entry (room for ``size`` reserved by
        :meth:`reserve`, given back here whatever happens)."""
        try:
            name, written = self.writer.write(raw, calling)
        except BaseException:
            self.release(size)
            raise
        entry = self.admit(name, written, size)
        assert entry is not None  # slot 0 is never adopted
        return entry

    def admit(self, name: str, size: int, reserved: int) -> Entry | None:
        """Count an entry written durably (here or by an acceptor process, :class:`SpoolWriter`)
        and give back the room reserved for it; the entry, or None when it was adopted already
        (:meth:`adopt`) and must not be queued twice."""
        entry = Entry(name, size)
        with self._lock:
            self._reserved.remove(reserved)
            self._lock.notify_all()
            if name in self._live:
                return None
            self._live[name] = entry
        return entry

    def release(self, reserved: int) -> None:
        """Give back room reserved for an instance that was not spooled."""
        with self._lock:
            self._reserved.remove(reserved)
            self._lock.notify_all()

    def adopt(self, slot: int) -> list[Entry]:
        """The entries acceptor ``slot`` wrote durably but never reported (it died between the
        directory fsync and its message), now counted; its unacknowledged temporaries removed.
        Called once that acceptor is gone, so nothing of it is in flight."""
        adopted = []
        for path in sorted(self.directory.iterdir()):
            stem = path.name.split(".", 1)[0]
            if not _NAME.fullmatch(stem) or slot_of(stem) != slot:
                continue
            if path.suffix == TEMPORARY:
                path.unlink(missing_ok=True)
            elif path.suffix == SEALED:
                with self._lock:
                    if stem not in self._live:
                        self._live[stem] = Entry(stem, path.stat().st_size)
                        adopted.append(self._live[stem])
        return adopted

    def open(self, entry: Entry) -> Spooled:
        """The instance an entry holds; IntegrityError when it does not open (changed on disk,
        or sealed to a key this identity never held)."""
        data = (self.directory / (entry.name + SEALED)).read_bytes()
        plain = io.BytesIO()
        try:
            open_envelope(io.BytesIO(data), plain, self._identity.unwrap_keys)
        except IntegrityError:
            raise
        except Exception as error:  # NotARecipient, a malformed stanza: never openable
            raise IntegrityError(f"spool entry {entry.name} does not open: {error}") from None
        value = plain.getvalue()
        (length,) = _CALLING.unpack_from(value)
        calling = value[_CALLING.size : _CALLING.size + length].decode("ascii", "replace")
        return Spooled(calling, value[_CALLING.size + length :])

    def note_record(self, entry: Entry, manifest_cid: str) -> None:
        """Remember, durably, the record an entry is about to be registered as."""
        path = self.directory / (entry.name + RECORD)
        temporary = self.directory / (entry.name + RECORD + TEMPORARY)
        _write_durably(temporary, manifest_cid.encode("ascii"))
        os.rename(temporary, path)
        self.writer.sync_directory()

    def record_of(self, entry: Entry) -> str | None:
        """The manifest CID noted for an entry before its registration, if any."""
        try:
            with (self.directory / (entry.name + RECORD)).open("rb") as handle:
                noted = handle.read(_MAX_CID)
        except FileNotFoundError:
            return None
        return noted.decode("ascii", "replace").strip() or None

    def remove(self, entry: Entry) -> None:
        """Delete a registered entry, then its noted record (the other order would let a crash
        between them seal the instance again)."""
        (self.directory / (entry.name + SEALED)).unlink(missing_ok=True)
        (self.directory / (entry.name + RECORD)).unlink(missing_ok=True)
        self._forget(entry)

    def move_to_quarantine(self, entry: Entry) -> None:
        """Set an entry that can never be registered aside, still encrypted."""
        os.rename(
            self.directory / (entry.name + SEALED), self.quarantine_dir / (entry.name + SEALED)
        )
        fsync(self.quarantine_dir)
        self.writer.sync_directory()
        (self.directory / (entry.name + RECORD)).unlink(missing_ok=True)
        with self._lock:
            self.quarantined += 1
        self._forget(entry)

    def _forget(self, entry: Entry) -> None:
        with self._lock:
            self._live.pop(entry.name, None)
            self._lock.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        """Wait until no entry is left (every instance registered or quarantined)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._live or self._reserved:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def _scan(self) -> list[Entry]:
        """The entries on disk at start; leftovers of a crash removed (unacknowledged
        temporaries, records noted for entries already deleted)."""
        found, names = [], set()
        for path in sorted(self.directory.iterdir()):
            if path.suffix == TEMPORARY:
                path.unlink(missing_ok=True)
            elif path.suffix == SEALED and _NAME.fullmatch(path.stem):
                names.add(path.stem)
                found.append(Entry(path.stem, path.stat().st_size))
        for path in self.directory.glob("*" + RECORD):
            if path.stem not in names:
                path.unlink(missing_ok=True)
        return found


class SpoolWriter:
    """What writes entries: each one sealed to the gateway's card (a random file key wrapped
    once, a fresh salt and nonce prefix per entry), written durably and renamed. Needs only the
    public card, so an acceptor process (:mod:`scanseal.dicom._acceptors`) writes with it too;
    ``slot`` (0 the gateway, 1 to 9 an acceptor) is the first digit of the counter in each
    name, so that the entries of an acceptor that died can be told apart (:meth:`Spool.adopt`).
    Thread-safe."""

    def __init__(self, directory: Path, card: IdentityCard, slot: int) -> None:
        if not 0 <= slot <= 9:
            raise ValueError("a spool writer's slot is 0 to 9")
        self.directory, self.slot = directory, slot
        self._file_key = new_file_key()
        self._stanzas = [card.recipient(DEFAULT_KIND).wrap(self._file_key)]
        self._names = count()
        self._lock = threading.Condition()
        self._renamed = self._synced = 0
        self._syncing = False

    def write(self, raw: bytes, calling: str) -> tuple[str, int]:
        """One received instance as a durable entry; its name and its size on disk."""
        with self._lock:
            serial = next(self._names) % 100_000
        name = f"{time.time_ns():020d}-{self.slot}{serial:05d}"
        data = self._seal(_CALLING.pack(len(calling)) + calling.encode("ascii") + raw)
        _write_durably(self.directory / (name + TEMPORARY), data)
        os.rename(self.directory / (name + TEMPORARY), self.directory / (name + SEALED))
        self.sync_directory()
        return name, len(data)

    def _seal(self, plain: bytes) -> bytes:
        header = build_header(self._file_key, self._stanzas)
        out = io.BytesIO()
        out.write(header.encoded)
        encrypt_payload(io.BytesIO(plain), out, self._file_key, header)
        return out.getvalue()

    def sync_directory(self) -> None:
        """Make every rename so far durable: one fsync of the directory serves all the renames
        done before it started (group commit across associations)."""
        with self._lock:
            self._renamed += 1
            wanted = self._renamed
            while self._synced < wanted:
                if self._syncing:
                    self._lock.wait()
                    continue
                self._syncing, target = True, self._renamed
                self._lock.release()
                try:
                    fsync(self.directory)
                finally:
                    self._lock.acquire()
                    self._syncing = False
                    self._synced = max(self._synced, target)
                    self._lock.notify_all()


def slot_of(name: str) -> int:
    """The writer slot of an entry's name (:class:`SpoolWriter`)."""
    return int(name.split("-", 1)[1][0])


def _write_durably(path: Path, data: bytes) -> None:
    """Create ``path`` (owner only, never an existing file) holding ``data``, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
