"""A recipient's catalogue: the records shared with it, described and grouped into studies.

The gateway's inbox names records, nothing more (docs/PROTOCOL.md): what a record is — its
study, series and SOP Instance UIDs, patient, date, modality — is in its manifest's encrypted
metadata, readable only with a recipient's key. :meth:`Catalogue.refresh` walks the inbox from
the cursor it last reached, fetches each record it has not described yet once (a signed fetch,
logged on the ledger like any other), decrypts the metadata, checks it against the signed hash
chain (H2), and keeps the description in a SQLite file of the recipient's own home
(``$SCANSEAL_HOME/catalogue/<address>.sqlite3``, owner only: it holds patient names). So
``scanseal inbox`` lists studies, and ``fetch``, ``grant``, ``revoke`` and ``audit`` take a
Study Instance UID, resolved here to its instance records.

:func:`study_path` is where ``fetch STUDY -o DIR`` writes an instance:
``DIR/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``; :func:`already_fetched`
tells a file there that already holds the sealed bytes (its SHA-256 is the signed H1), which a
resumed fetch skips.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from scanseal._json import parse_object
from scanseal._sqlite import open_database
from scanseal.crypto.envelope import Header
from scanseal.crypto.identity import Identity
from scanseal.errors import GatewayUnavailable, ScanSealError
from scanseal.ingest import ImageMetadata
from scanseal.integrity import verify_chain
from scanseal.transfer.checked import Unlocked, unlock_record
from scanseal.transfer.grants import Grant
from scanseal.transfer.manifest import Manifest, decrypt_metadata
from scanseal.transfer.verdict import screen_verdict

_STUDY_UID: Final = re.compile(r"[0-9]+(\.[0-9]+)+")
_UID_PART: Final = re.compile(r"[0-9.]{1,64}")
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS described (
    record TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    study TEXT,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS described_study ON described (study, seq);
CREATE TABLE IF NOT EXISTS cursor (gateway TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


def is_study_uid(text: str) -> bool:
    """Whether ``text`` reads as a DICOM UID (digits and dots, 64 characters at most), not a
    record CID: the commands that take either tell them apart with this."""
    return len(text) <= 64 and _STUDY_UID.fullmatch(text) is not None


@dataclass(frozen=True)
class Described:
    """What a recipient may know of one record without opening it."""

    record: str
    study: str | None
    series: str | None
    sop: str | None
    patient_name: str | None
    patient_id: str | None
    modality: str | None
    study_datetime: str | None
    sender: str
    sender_address: str
    h1: str
    warning: str | None
    """The screen's signed verdict when it flagged the instance, else None."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(
    record: str, manifest: Manifest, header: Header, identity: Identity, grant: Grant | None
) -> Described:
    """Decrypt ``manifest``'s metadata with ``identity``'s key (unwrapped from the envelope's
    ``header``, or from ``grant``'s when the record was granted later), checked against H2."""
    unlocked = unlock_record(manifest, header, identity.transport_keys.values(), grant)
    return describe_unlocked(record, unlocked)


def describe_unlocked(record: str, unlocked: Unlocked) -> Described:
    """:func:`describe` of a record :func:`~scanseal.transfer.checked.unlock_record` unlocked
    (which opening it may then reuse: one signature check and one key unwrap per record)."""
    manifest, unwrapping = unlocked.manifest, unlocked.unwrapping
    file_key = unlocked.file_key
    canonical = decrypt_metadata(file_key, unwrapping.salt, manifest.metadata_ciphertext)
    verify_chain(manifest.chain, manifest.chain.h1, canonical)  # H2 binds the metadata
    meta = ImageMetadata.from_dict(parse_object(canonical, "decrypted metadata"))
    verdict = screen_verdict(manifest)
    return Described(
        record=record, study=meta.study_instance_uid, series=meta.series_instance_uid,
        sop=meta.sop_instance_uid, patient_name=meta.patient_name, patient_id=meta.patient_id,
        modality=meta.modality, study_datetime=meta.study_datetime,
        sender=manifest.uploader.name, sender_address=manifest.uploader.address,
        h1=manifest.chain.h1.hex(),
        warning=verdict.describe() if verdict is not None and verdict.flagged else None,
    )  # fmt: skip


class InboxGateway(Protocol):
    """What a catalogue needs of a gateway (``scanseal.client.GatewayClient`` is one)."""

    url: str

    def inbox(self, after: int = 0) -> dict[str, Any]:
        """A page of the caller's inbox: ``{records: [{seq, record}], next, more}``."""
        ...

    def describe(self, record: str) -> Described:
        """Fetch ``record`` and describe it (:func:`describe`)."""
        ...


# A gateway may also have ``will_describe(records: list[str]) -> None``: before describing a
# page, :meth:`Catalogue.refresh` names the records it is about to describe, in that order (a
# gateway that fetches ahead starts on the next ones while one is being opened).


class Catalogue:
    """One recipient's described records, in a SQLite file it alone reads."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA)
        # What it holds is read again from the inbox when lost: a commit need not wait for the
        # disk (WAL mode keeps the file consistent through a power cut either way).
        self._db.execute("PRAGMA synchronous=NORMAL")
        path.chmod(0o600)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, home: Path, address: str) -> Catalogue:
        return cls(home / "catalogue" / f"{address}.sqlite3")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def refresh(self, gateway: InboxGateway) -> list[tuple[str, ScanSealError]]:
        """Describe every record the inbox announced since the last refresh. A record that
        cannot be described (refused, altered) is returned with why, and the cursor stays
        before it so the next refresh tries it again; a gateway that stops answering ends the
        refresh (GatewayUnavailable)."""
        after, problems = self._cursor(gateway.url), []
        retry_from: int | None = None
        ahead = getattr(gateway, "will_describe", None)  # an optional hook: prefetching
        while True:
            page = gateway.inbox(after)
            fresh = [(int(e["seq"]), str(e["record"])) for e in page["records"]]
            fresh = [(seq, record) for seq, record in fresh if not self._known(record)]
            if ahead is not None:
                ahead([record for _seq, record in fresh])  # in the order described below
            for seq, record in fresh:
                try:
                    self._add(seq, gateway.describe(record))
                except GatewayUnavailable:
                    raise
                except ScanSealError as error:
                    problems.append((record, error))
                    retry_from = seq - 1 if retry_from is None else retry_from
            after = int(page["next"])
            self._set_cursor(gateway.url, after if retry_from is None else retry_from)
            if not page["more"]:
                return problems

    def records(self, study: str | None = None) -> list[Described]:
        """Every described record, or those of ``study``, in inbox order."""
        with self._lock:
            if study is None:
                rows = self._db.execute("SELECT entry FROM described ORDER BY seq")
            else:
                rows = self._db.execute(
                    "SELECT entry FROM described WHERE study = ? ORDER BY seq", (study,)
                )
            found = rows.fetchall()
        return [Described(**json.loads(row[0])) for row in found]

    def studies(self) -> list[dict[str, Any]]:
        """One summary per study: patient, date, modalities, senders, instances, warnings."""
        groups: dict[str | None, list[Described]] = {}
        for entry in self.records():
            groups.setdefault(entry.study, []).append(entry)
        return [_summary(study, entries) for study, entries in groups.items()]

    def _known(self, record: str) -> bool:
        with self._lock:
            found = self._db.execute("SELECT 1 FROM described WHERE record = ?", (record,))
            return found.fetchone() is not None

    def _add(self, seq: int, entry: Described) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO described (record, seq, study, entry) VALUES (?, ?, ?, ?)",
                (entry.record, seq, entry.study, json.dumps(entry.to_dict())),
            )

    def _cursor(self, gateway: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM cursor WHERE gateway = ?", (gateway,))
            found = row.fetchone()
        return 0 if found is None else int(found[0])

    def _set_cursor(self, gateway: str, seq: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cursor (gateway, seq) VALUES (?, ?)", (gateway, seq)
            )


def _summary(study: str | None, entries: Sequence[Described]) -> dict[str, Any]:
    first = entries[0]
    return {
        "study": study,
        "patient_name": first.patient_name,
        "patient_id": first.patient_id,
        "study_datetime": first.study_datetime,
        "modalities": sorted({e.modality for e in entries if e.modality}),
        "senders": sorted({e.sender for e in entries}),
        "instances": len(entries),
        "warnings": [f"{e.sop or e.record}: {e.warning}" for e in entries if e.warning],
        "records": [e.record for e in entries],
    }


def study_path(directory: Path, entry: Described) -> Path:
    """``DIR/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` for ``entry``.

    UIDs that are not digits and dots (a sender's broken file) never become path parts: such an
    instance is written under its record CID instead, so no name can climb out of ``DIR``.
    """
    study, series, sop = (_safe(uid) for uid in (entry.study, entry.series, entry.sop))
    if study is None or series is None or sop is None:
        return directory / (study or "unknown-study") / entry.record
    return directory / study / series / f"{sop}.dcm"


def _safe(uid: str | None) -> str | None:
    """``uid`` when it is digits and dots and not only dots (never ``..``), else None."""
    if uid is None or _UID_PART.fullmatch(uid) is None or not uid.strip("."):
        return None
    return uid


def already_fetched(path: Path, entry: Described) -> bool:
    """Whether ``path`` already holds exactly the bytes sealed in ``entry``'s record."""
    if not path.is_file():
        return False
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == entry.h1
