"""What each page shows, gathered from the gateway with the user's signed requests.

Nothing the gateway answers is trusted more here than on the command line: a manifest is read
only once it hashes to the record's CID (``client.record_manifest``), the screen's verdict only
from a manifest whose signature holds (``transfer.screen_verdict``), a batched entry's inclusion
proof is recomputed here and its root compared with the one anchored on the user's chain
(``_anchor``), and
a record is opened only through ``GatewayClient.fetch`` (every hash checked while decrypting).
The plaintext of an opened record stays in the console's private working directory, so its
metadata (patient, modality, study date) and its heat map can be shown; it never leaves it.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanseal import audit
from scanseal.client import GatewayClient, record_manifest
from scanseal.console._anchor import Anchors
from scanseal.errors import IntegrityError, ScanSealError
from scanseal.ledger import utc_iso
from scanseal.transfer import Manifest, OpenedFile, screen_verdict
from scanseal.transfer.catalogue import Catalogue, Described

MAX_INBOX: int = 1000
"""The most inbox entries one page lists (the gateway pages by 200)."""


@dataclass(frozen=True)
class Summary:
    """One record as the inbox lists it."""

    record: str
    sealed: str
    sender: str
    sender_address: str
    image_format: str
    warning: str | None
    patient: str | None
    modality: str | None
    study: str | None


@dataclass(frozen=True)
class Catalogued:
    """What the user's catalogue holds (``transfer.catalogue``) after a refresh."""

    records: list[Described]
    studies: list[dict[str, Any]]
    problems: list[tuple[str, ScanSealError]]


@dataclass
class Console:
    """The console's one session: the signing client, the names it knows, the opened records."""

    client: GatewayClient
    workdir: Path
    names: dict[str, str] = field(default_factory=dict)
    home: Path | None = None
    """Where the user's catalogue lives ($SCANSEAL_HOME); None: no catalogue is kept."""
    anchors: Anchors | None = None
    """The user's chain, to compare each proof's root with the anchored one; None: none."""
    opened: dict[str, OpenedFile] = field(default_factory=dict)
    _manifests: dict[str, Manifest] = field(default_factory=dict)
    _heat: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def me(self) -> str:
        identity = self.client.identity
        return "" if identity is None else f"{identity.name} ({identity.address})"

    def manifest(self, record: str) -> tuple[Manifest, dict[str, Any]]:
        """The record's manifest checked against its CID, and the gateway's verify report."""
        report = self.client.verify(record)
        manifest = record_manifest(str(report.get("manifest", "")), record)
        with self._lock:
            self._manifests[record] = manifest
        return manifest, report

    def inbox(self) -> list[Summary]:
        """Every record granted to this identity, newest first."""
        records: list[str] = []
        cursor, more = 0, True
        while more and len(records) < MAX_INBOX:
            page = self.client.inbox(cursor)
            records += [str(entry["record"]) for entry in page["records"]]
            cursor, more = int(page["next"]), bool(page["more"]) and page["records"] != []
        return [self.summary(record) for record in reversed(records)]

    def known(self, record: str) -> Manifest:
        """The record's checked manifest, read from the gateway the first time only (a record
        is content-addressed: its manifest never changes)."""
        with self._lock:
            known = self._manifests.get(record)
        return known if known is not None else self.manifest(record)[0]

    def summary(self, record: str) -> Summary:
        manifest = self.known(record)
        metadata = self.opened[record].metadata if record in self.opened else None
        sender = manifest.uploader
        return Summary(
            record=record,
            sealed=utc_iso(manifest.chain.timestamp),
            sender=self.names.get(sender.address) or sender.name,
            sender_address=sender.address,
            image_format=manifest.image_format,
            warning=warning_of(manifest),
            patient=None if metadata is None else metadata.patient_name or metadata.patient_id,
            modality=None if metadata is None else metadata.modality,
            study=None if metadata is None else metadata.study_datetime,
        )

    def open(self, record: str) -> OpenedFile:
        """Fetch and open ``record`` into the working directory (logged on the ledger); a
        record opened already is not fetched again."""
        with self._lock:
            if record in self.opened:
                return self.opened[record]
        target = self.workdir / record
        target.mkdir(mode=0o700, exist_ok=True)
        opened = self.client.fetch(record, target / "image")
        with self._lock:
            self.opened[record] = opened
            self._heat.pop(record, None)
        return opened

    def heat_map(self, record: str) -> bytes | None:
        """The detector's heat map drawn on the opened image, as PNG; None if not opened."""
        opened = self.opened.get(record)
        if opened is None:
            return None
        with self._lock:
            if record in self._heat:
                return self._heat[record]
        from scanseal.detect import default_detector  # onnxruntime: only when a map is drawn

        detector = default_detector()
        picture = detector.heatmap(detector.screen(opened.path))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        with self._lock:
            self._heat[record] = buffer.getvalue()
        return self._heat[record]

    def catalogued(self) -> Catalogued:
        """The user's catalogue brought up to date with the inbox (each new record fetched
        once to read what it is, as ``scanseal inbox`` does): its records, its studies, and
        the records it could not describe, with why."""
        if self.home is None or self.client.identity is None:
            return Catalogued([], [], [])
        with Catalogue.of(self.home, self.client.identity.address) as catalogue:
            problems = catalogue.refresh(self.client)
            return Catalogued(catalogue.records(), catalogue.studies(), problems)

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        """One page of the gateway's signed audit query (``body``: its filters and cursor);
        its events with names beside addresses and their record, each proof checked."""
        page = self.client.audit_page(**body)
        raw = page["events"]
        events = audit.entries(raw, self.names)
        for event, original in zip(events, raw, strict=True):
            event["record"] = original.get("record")
            event["record_id"] = original.get("record_id")
            if event["record"]:
                event["proof_check"] = self.proof_check(str(event["record"]), event)
        return {**page, "events": events}

    def trail(self, record: str) -> list[dict[str, Any]]:
        """The record's audit entries (names beside addresses), each with its proof checked."""
        raw = self.client.audit(record)
        events = audit.entries(raw, self.names)
        for event in events:
            event["proof_check"] = self.proof_check(record, event)
        return events

    def proof_check(self, record: str, event: dict[str, Any]) -> str | None:
        """A batched entry's inclusion proof checked against the chain (``_anchor``); None
        for an event without a proof (a transaction, or an entry not anchored yet)."""
        raw = event.get("proof")
        if not isinstance(raw, dict):
            return None
        anchors = self.anchors or Anchors(None, self.client.domain.contract)
        return anchors.check(record, raw)


def warning_of(manifest: Manifest) -> str | None:
    """The screen's warning for a flagged record, else None (a bad signature is a warning)."""
    try:
        verdict = screen_verdict(manifest)
    except IntegrityError as error:
        return f"the manifest's signature does not hold: {error}"
    if verdict is None or not verdict.flagged:
        return None
    return verdict.describe()


def verdict_text(manifest: Manifest) -> str:
    """The screen's verdict as one line, whatever it is."""
    try:
        verdict = screen_verdict(manifest)
    except IntegrityError as error:
        return f"the manifest's signature does not hold: {error}"
    return "not screened at sealing (screen off)" if verdict is None else verdict.describe()
