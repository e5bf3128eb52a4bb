"""Sending a study: files and directories in, one record per instance out, never twice.

A user sends a study, not files: :func:`expand` walks the files and directories named (sorted,
recursively; hidden files and DICOMDIR indexes left out). Each file is then ingested once
(:meth:`Instance.read`), sent and let go, so memory stays that of a few instances however large
the study; a :class:`StudyTally` per Study Instance UID (PNG and JPEG, which have none, share the
tally ``None``) keeps what became of each instance for the study's summary and manifest.

:class:`StudySender` sends instances through a :class:`RecordGateway` (the gateway client) in
two halves, :meth:`~StudySender.prepare` (seal) and :meth:`~StudySender.finish` (upload), so a
caller seals the next instance while the previous ones upload (``scanseal send`` keeps
:data:`UPLOADS_IN_FLIGHT` uploads going). It keeps a send log,
``WORKDIR/.scanseal-sent.sqlite3``: one row per (gateway, uploader, recipients, SOP Instance
UID, pixel or content digest) naming the record. The row is
written *pending* with the record's CID (the manifest's, known before the upload) before the
upload starts and *done* once the gateway answered, so a send killed at any point and run again
neither duplicates nor loses an instance: a done row is skipped, a pending one is asked of the
gateway (:meth:`RecordGateway.holds`) and skipped when the gateway holds it, sealed and sent
again when not. Once every instance of a study is registered, :meth:`StudySender.seal_study`
signs the study manifest that lists their records under one Merkle root (docs/FORMAT.md §7).

An instance of a DICOM study is uploaded with its recipients' grant deferred to that study
record: the gateway grants it when the study is registered (one ledger transaction for the
study, not one per instance), and until then no recipient may read it. A send killed before
the study's registration leaves its instances closed; run again, it registers the study and
so opens them. PNG and JPEG files, which have no study, are granted as they are uploaded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from scanseal._sqlite import open_database
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import InvalidInput, ScanSealError
from scanseal.ingest import IngestedImage, read_image
from scanseal.integrity.pixels import pixel_digest
from scanseal.storage import cid_of
from scanseal.transfer.local import Progress, SealedFile
from scanseal.transfer.manifest import Manifest
from scanseal.transfer.study_manifest import StudyManifest, study_uid_digest
from scanseal.transfer.upload import seal_for_upload, with_self

UPLOADS_IN_FLIGHT: Final = 2
"""Uploads a send keeps going while it seals the next instance: the gateway works on one while
it receives the other (and folds their grants into one transaction), the client seals."""
SEALS_AT_ONCE: Final = 2
"""Instances a send reads, screens and seals at once (one thread each): the detector
(onnxruntime), numpy, hashlib and the file reads release the GIL, so on two cores two
instances are screened at the same time while earlier ones upload."""
SEND_LOG: Final = ".scanseal-sent.sqlite3"
"""The send log's file name, in the send's working directory."""
_SKIPPED_NAMES: Final = frozenset({"DICOMDIR"})
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sent (
    gateway TEXT NOT NULL,
    uploader TEXT NOT NULL,
    recipients TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    digest TEXT NOT NULL,
    record TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    PRIMARY KEY (gateway, uploader, recipients, sop_instance_uid, digest)
);
"""


@dataclass(frozen=True)
class Instance:
    """One file of a send, ingested once (header validated, nothing decoded yet)."""

    path: Path
    image: IngestedImage

    @classmethod
    def read(cls, path: Path) -> Instance:
        """``path`` ingested (InvalidInput naming it when ingest refuses it)."""
        return cls(path, read_image(path))

    @property
    def study(self) -> str | None:
        return self.image.metadata.study_instance_uid

    @property
    def sop(self) -> str:
        """The SOP Instance UID, or "" for a PNG or JPEG file (which has none)."""
        return self.image.metadata.sop_instance_uid or ""


def expand(sources: Sequence[Path]) -> list[Path]:
    """Every file of ``sources``: files as named, directories walked recursively (sorted;
    hidden files and DICOMDIR indexes left out), each file once. A source that does not exist
    is InvalidInput before anything is read."""
    missing = [str(s) for s in sources if not s.is_file() and not s.is_dir()]
    if missing:
        raise InvalidInput(f"no such file or directory: {', '.join(missing)}")
    files: dict[Path, None] = {}  # ordered, each file once
    for source in sources:
        walked = [source] if source.is_file() else sorted(source.rglob("*"))
        for path in walked:
            inside = path.relative_to(source).parts if source.is_dir() else ()
            skipped = any(part.startswith(".") for part in inside) or path.name in _SKIPPED_NAMES
            if skipped and source.is_dir():
                continue
            if path.is_file():
                files.setdefault(path, None)
    return list(files)


@dataclass
class StudyTally:
    """What became of one study's instances in a send, in the order they were met."""

    study: str | None
    records: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: list[tuple[Path, ScanSealError]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.records) + len(self.failed)

    def add(self, sent: Sent) -> None:
        self.records.append(sent.record)
        self.skipped += sent.skipped


class RecordGateway(Protocol):
    """What a study send needs of a gateway (``scanseal.client.GatewayClient`` is one)."""

    url: str

    def upload(self, sealed: SealedFile, *, with_study: bool = False) -> dict[str, Any]:
        """Upload a sealed instance; the answer names its ``manifest_cid``. ``with_study``:
        its recipients' grant waits for :meth:`register_study` of its study."""
        ...

    def holds(self, record: str) -> bool:
        """Whether the gateway holds ``record`` (registered on its ledger)."""
        ...

    def register_study(self, manifest: StudyManifest) -> dict[str, Any]:
        """Register a signed study manifest; the answer names its ``study_cid``."""
        ...


@dataclass(frozen=True)
class Sent:
    """One instance's outcome: its record, and whether an earlier send had already sent it
    (``manifest`` is then None: nothing was sealed this time)."""

    instance: Instance
    record: str
    skipped: bool
    manifest: Manifest | None


@dataclass(frozen=True)
class Sealed:
    """An instance sealed and logged pending, not uploaded yet (:meth:`StudySender.prepare`)."""

    instance: Instance
    key: tuple[str, ...]
    sealed: SealedFile


class StudySender:
    """Seals and uploads instances for ``recipients`` as ``uploader``, each at most once."""

    def __init__(
        self,
        gateway: RecordGateway,
        uploader: Identity,
        recipients: Sequence[IdentityCard],
        workdir: Path,
    ) -> None:
        self.gateway = gateway
        self.uploader = uploader
        self.recipients = list(recipients)
        self.workdir = workdir
        self._log = open_database(workdir / SEND_LOG, _SCHEMA, durable=True)
        self._lock = threading.Lock()
        self._audience = ",".join(sorted(c.address for c in with_self(recipients, uploader)))
        self._names: set[str] = set()

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> StudySender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, instance: Instance, progress: Progress | None = None) -> Sent:
        """Send ``instance`` unless the log (or, for a pending row, the gateway) says it was."""
        return self.finish(self.prepare(instance, progress))

    def prepare(
        self, instance: Instance, progress: Progress | None = None, *, name: str | None = None
    ) -> Sent | Sealed:
        """The first half of :meth:`send`: what an earlier send already registered (a
        :class:`Sent`, skipped), or ``instance`` sealed and logged pending (a :class:`Sealed`
        for :meth:`finish`). A caller may seal the next instance while one uploads, and seal
        several at once from several threads; it then names each envelope in file order
        first (:meth:`envelope_name`, passed as ``name``), so the names do not depend on which
        thread finished first."""
        digest = pixel_digest(instance.image)
        key = (self.gateway.url, self.uploader.address, self._audience, instance.sop,
               digest.hex())  # fmt: skip
        row = self._row(key)
        if row is not None and (row[1] == "done" or self.gateway.holds(row[0])):
            self._mark(key, row[0], "done")
            return Sent(instance, row[0], True, None)
        sealed = seal_for_upload(
            instance.image, self.recipients, self.uploader, self.workdir,
            progress=progress, name=name or self.envelope_name(instance.path), digest=digest,
        )  # fmt: skip
        with sealed.manifest_path.open("rb") as manifest:
            record = cid_of(manifest)
        self._mark(key, record, "pending")  # on disk before the gateway hears of it
        return Sealed(instance, key, sealed)

    def finish(self, ready: Sent | Sealed) -> Sent:
        """The second half of :meth:`send`: upload what :meth:`prepare` sealed and log it done
        (safe in another thread than :meth:`prepare`'s)."""
        if isinstance(ready, Sent):
            return ready
        study = ready.instance.study is not None  # its study record grants it (seal_study)
        answer = self.gateway.upload(ready.sealed, with_study=study)
        self._mark(ready.key, str(answer["manifest_cid"]), "done")
        return Sent(ready.instance, str(answer["manifest_cid"]), False, ready.sealed.manifest)

    def seal_study(self, study_uid: str, records: Sequence[str]) -> tuple[Path, str]:
        """Sign the study manifest of ``records`` (docs/FORMAT.md §7), write it as
        ``WORKDIR/study-<first 16 hex of its UID digest>.json`` and register it with the
        gateway as one ledger record; its path and its study record's CID. The manifest a
        send of the same study wrote there before is kept when it lists the same records (a
        send run again registers nothing new, and grants of that study record still hold)."""
        path = self.workdir / f"study-{study_uid_digest(study_uid).hex()[:16]}.json"
        manifest = self._sealed_before(path, study_uid, records)
        if manifest is None:
            manifest = StudyManifest.build(
                study_uid, records, self.uploader.name, self.uploader.address, int(time.time())
            ).signed_by(self.uploader.sign)
            partial = path.with_name(path.name + ".partial")
            partial.write_text(manifest.to_json(), "utf-8")
            partial.replace(path)
        answer = self.gateway.register_study(manifest)
        return path, str(answer["study_cid"])

    def _sealed_before(
        self, path: Path, study_uid: str, records: Sequence[str]
    ) -> StudyManifest | None:
        """The manifest at ``path`` if this uploader signed it for exactly these records of
        this study; None when there is none or it is another (it is then replaced)."""
        try:
            held = StudyManifest.from_bytes(path.read_bytes())
            held.verify(study_uid)
        except (OSError, ScanSealError):
            return None
        same = held.instances == tuple(sorted(set(records)))
        return held if same and held.uploader_address == self.uploader.address else None

    def envelope_name(self, path: Path) -> str:
        """``NAME`` of the source file ``path``, or ``NAME-2``, ``NAME-3``… when a file of the
        same name elsewhere in the send already took it (series folders repeat file names)."""
        with self._lock:
            name, number = path.name, 1
            while name in self._names:
                number += 1
                name = f"{path.name}-{number}"
            self._names.add(name)
            return name

    def _row(self, key: tuple[str, ...]) -> tuple[str, str] | None:
        with self._lock:
            found = self._log.execute(
                "SELECT record, state FROM sent WHERE gateway = ? AND uploader = ? AND "
                "recipients = ? AND sop_instance_uid = ? AND digest = ?",
                key,
            ).fetchone()
        return None if found is None else (str(found[0]), str(found[1]))

    def _mark(self, key: tuple[str, ...], record: str, state: str) -> None:
        """Log ``record`` as ``state``. A pending row reaches the disk before this returns
        (the upload must not start before it); a done row may wait for the next pending row's
        commit, since a done row lost in a power cut is only a pending one, which the next
        send asks the gateway about (:meth:`RecordGateway.holds`): one disk sync per
        instance, not two."""
        with self._lock:
            if state == "done":
                self._log.execute("PRAGMA synchronous=NORMAL")
            try:
                self._log.execute(
                    "INSERT OR REPLACE INTO sent (gateway, uploader, recipients, "
                    "sop_instance_uid, digest, record, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*key, record, state),
                )
            finally:
                if state == "done":
                    self._log.execute("PRAGMA synchronous=FULL")
