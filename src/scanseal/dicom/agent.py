"""The auto-forward agent: a recipient's side of the DICOM flow, without a person in between.

A gateway cannot open what it stores (it holds no recipient key), so forwarding into a PACS runs
where the recipient's key is: this agent holds one identity, asks the sending gateway's inbox
(``GET /v1/inbox``, signed) for records granted to it, fetches and opens each one exactly as
``scanseal fetch`` does (every hash checked against the manifest and the ledger) and C-STOREs it
into the configured PACS. Its SQLite state remembers the inbox cursor and every record's fate,
so a record forwarded once is never forwarded again, across restarts; a failure is retried with
exponential backoff, logged with its reason at every attempt and kept in the state until it
succeeds (``scanseal agent --status`` lists what is still pending, failed or held, with the
study, patient and SOP Instance UID the agent read from each instance it opened).

A PACS that is down (no association, or no answer) is one fault, not one per instance: the rest
of that pass leaves it alone (those records are *deferred*, untried, their attempts unchanged),
and the next passes try it again only after the same backoff (``retry_seconds`` doubling up to
``max_retry_seconds``), counted per destination and reset by its first success. That count
lives in the agent's memory: a restarted agent tries the PACS at once.

A record the tamper screen flagged at sealing (its signed manifest says so) logs a warning
either way; ``flagged`` decides whether it still goes into the PACS (``forward``) or is kept out
of it (``hold``, the default: it stays ``held`` in the state, with the verdict as its reason,
for a person to look at; docs/DICOM.md).

```toml
[forward]
gateway = "https://ct-gateway.example:8470"   # the gateway that holds the records
identity = "radiology-b"                      # the recipient identity in this keystore
destination = "ORTHANC@127.0.0.1:4242"        # AET@HOST:PORT of the receiving PACS
calling_ae = "SCANSEAL"                       # our AE title towards the PACS
ca = "certs/ca.pem"                           # the gateway's CA, for a private TLS CA
poll_seconds = 5
retry_seconds = 5                             # first retry of a record or of a PACS that is
max_retry_seconds = 600                       # down; doubles up to max_retry_seconds
state_dir = "forward"                         # default $SCANSEAL_HOME/forward
flagged = "hold"                              # or "forward": what a flagged record does
```
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pydicom

from scanseal._sqlite import open_database
from scanseal.config import Table, resolve, scanseal_home
from scanseal.crypto.identity import Identity
from scanseal.dicom._logs import to_stderr
from scanseal.dicom.forward import Destination, DestinationUnavailable, forward
from scanseal.errors import IntegrityError, InvalidInput, ScanSealError
from scanseal.transfer import Manifest, screen_verdict

if TYPE_CHECKING:
    from scanseal.client import GatewayClient

log = logging.getLogger("scanseal.agent")
PENDING: Final = "pending"
FORWARDED: Final = "forwarded"
FAILED: Final = "failed"
HELD: Final = "held"
FLAGGED_POLICIES: Final = ("hold", "forward")
"""What the agent does with a record flagged at sealing: keep it out of the PACS, or send it."""
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS cursors (
    gateway TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    manifest_cid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_try REAL NOT NULL,
    last_error TEXT,
    updated REAL NOT NULL,
    labels TEXT
);
CREATE INDEX IF NOT EXISTS items_due ON items (status, next_try);
"""
_SELECT: Final = "SELECT manifest_cid, status, attempts, next_try, last_error, labels FROM items "
_LABELS: Final = ("StudyInstanceUID", "StudyDescription", "PatientName", "PatientID",
                  "SOPInstanceUID")  # fmt: skip


@dataclass(frozen=True)
class ForwardConfig:
    """The [forward] table: which gateway to watch, as whom, and where to C-STORE."""

    gateway: str
    identity: str
    destination: Destination
    calling_ae: str = "SCANSEAL"
    ca: Path | None = None
    poll_seconds: float = 5.0
    retry_seconds: float = 5.0
    max_retry_seconds: float = 600.0
    state_dir: Path = field(default_factory=lambda: scanseal_home() / "forward")
    flagged: str = "hold"

    def __post_init__(self) -> None:
        if not self.gateway.startswith(("http://", "https://")):
            raise InvalidInput("forward: gateway must be an http:// or https:// URL")
        if min(self.poll_seconds, self.retry_seconds, self.max_retry_seconds) <= 0:
            raise InvalidInput("forward: poll_seconds and retry times must be positive")
        if not 0 < len(self.calling_ae) <= 16:
            raise InvalidInput("forward: calling_ae must be 1 to 16 characters")
        if self.flagged not in FLAGGED_POLICIES:
            raise InvalidInput(f"forward: flagged must be hold or forward, not {self.flagged!r}")

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure: doubling, capped."""
        return float(min(self.max_retry_seconds, self.retry_seconds * 2 ** min(attempts - 1, 30)))

    @classmethod
    def from_table(cls, table: Table) -> ForwardConfig:
        """The checked [forward] table; ``ca`` and ``state_dir`` are relative to the file."""
        missing = {"gateway", "identity", "destination"} - set(table.values)
        if missing:
            raise InvalidInput(f"forward: missing setting(s): {', '.join(sorted(missing))}")
        values = dict(table.values)
        values["destination"] = Destination.parse(values["destination"])
        for name in ("ca", "state_dir"):
            if name in values:
                values[name] = table.base_dir / values[name]
        return cls(**values)

    @classmethod
    def load(
        cls, path: Path | None = None, env: Mapping[str, str] | None = None
    ) -> ForwardConfig | None:
        """The [forward] table of the file :func:`scanseal.config.resolve` chooses; None when
        there is no such file or it has no [forward] table."""
        config = resolve(path, env)
        return cls.from_table(config.table("forward")) if config.has("forward") else None


@dataclass(frozen=True)
class Labels:
    """What an opened instance says it is, kept for ``--status``: None where the instance leaves
    an attribute out (a de-identified one shows its replacement values)."""

    study_uid: str | None = None
    study_description: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None
    sop_instance_uid: str | None = None

    @classmethod
    def read(cls, path: Path) -> Labels | None:
        """The labels of the DICOM file at ``path``; None for a file that is not DICOM."""
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # not DICOM (it fails later, with its reason)
            return None
        values = (str(ds.get(keyword, "") or "").strip() for keyword in _LABELS)
        return cls(*(value or None for value in values))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Labels | None:
        """The labels a state row kept; None for a row without (never opened, or malformed)."""
        try:
            return None if text is None else cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class Item:
    manifest_cid: str
    status: str
    attempts: int
    next_try: float
    last_error: str | None
    labels: Labels | None = None


class ForwardState:
    """The agent's durable memory: the inbox cursor per gateway and each record's status."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA, durable=True)  # "forwarded" survives a crash
        self._lock = threading.Lock()
        _add_labels_column(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def cursor(self, gateway: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM cursors WHERE gateway = ?", (gateway,))
            found = row.fetchone()
        return 0 if found is None else int(found[0])

    def discovered(self, gateway: str, cursor: int, records: list[str], now: float) -> int:
        """Queue new records and move the cursor in one transaction; returns how many were new."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO items (manifest_cid, status, attempts, next_try, "
                    "updated) VALUES (?, ?, 0, ?, ?)",
                    [(cid, PENDING, now, now) for cid in records],
                )
                added = self._db.total_changes - before
                self._db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (gateway, cursor))
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
        return added

    def due(self, now: float) -> list[Item]:
        query = _SELECT + "WHERE status = ? AND next_try <= ? ORDER BY next_try"
        return self._items(query, PENDING, now)

    def unfinished(self) -> list[Item]:
        return self._items(_SELECT + "WHERE status != ? ORDER BY updated", FORWARDED)

    def item(self, manifest_cid: str) -> Item | None:
        found = self._items(_SELECT + "WHERE manifest_cid = ?", manifest_cid)
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status")
            return {str(s): int(n) for s, n in rows.fetchall()}

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_try) FROM items WHERE status = ?", (PENDING,)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def labelled(self, manifest_cid: str, labels: Labels) -> None:
        """Keep what the record's instance says it is (read once the agent opened it)."""
        with self._lock:
            self._db.execute(
                "UPDATE items SET labels = ? WHERE manifest_cid = ?",
                (labels.to_json(), manifest_cid),
            )

    def done(self, manifest_cid: str, now: float) -> None:
        self._set(manifest_cid, FORWARDED, None, now, None)

    def held(self, manifest_cid: str, reason: str, now: float) -> None:
        """Keep a record out of the PACS for good, with why (a flag at sealing)."""
        self._set(manifest_cid, HELD, reason, now, None)

    def failed(self, manifest_cid: str, error: str, now: float, retry_at: float | None) -> None:
        """Record a failed attempt; ``retry_at`` None makes the failure final."""
        self._set(manifest_cid, FAILED if retry_at is None else PENDING, error, now, retry_at)

    def _set(
        self, cid: str, status: str, error: str | None, now: float, retry_at: float | None
    ) -> None:
        bump = 0 if status == FORWARDED else 1
        with self._lock:
            self._db.execute(
                "UPDATE items SET status = ?, attempts = attempts + ?, next_try = ?, "
                "last_error = ?, updated = ? WHERE manifest_cid = ?",
                (status, bump, now if retry_at is None else retry_at, error, now, cid),
            )

    def _items(self, query: str, *args: object) -> list[Item]:
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [
            Item(str(c), str(s), int(a), float(t), e, Labels.from_json(labels))
            for c, s, a, t, e, labels in rows
        ]


def _add_labels_column(db: sqlite3.Connection) -> None:
    """Give a state file from before the ``labels`` column that column (its rows keep NULL)."""
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(items)").fetchall()}
    if "labels" in columns:
        return
    try:
        db.execute("ALTER TABLE items ADD COLUMN labels TEXT")
    except sqlite3.OperationalError:  # another process (--status beside the agent) added it
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(items)").fetchall()}
        if "labels" not in columns:
            raise


@dataclass
class Pass:
    """What one pass of the agent did."""

    discovered: int = 0
    forwarded: int = 0
    failed: int = 0
    held: int = 0
    deferred: int = 0
    """Due records left untried because their destination was down in this pass or before."""

    def add(self, other: Pass) -> None:
        """Add ``other``'s counts to these (the agent's totals over its passes)."""
        for name in ("discovered", "forwarded", "failed", "held", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ForwardAgent:
    """Polls one gateway as one identity and forwards what it is granted into one PACS."""

    def __init__(self, config: ForwardConfig, identity: Identity) -> None:
        self.config = config
        self.identity = identity
        self.state = ForwardState(config.state_dir / "forward.sqlite3")
        self.destination_failures = 0
        """Consecutive passes in which the PACS was down; 0 after its first success."""
        self.destination_retry_at = 0.0
        """When the PACS is tried again after it was down (``time.time()`` seconds)."""
        self.totals = Pass()
        """What every pass since the agent started did, added up (``/metrics``)."""

    def close(self) -> None:
        self.state.close()

    def client(self) -> GatewayClient:
        from scanseal.client import GatewayClient

        return GatewayClient(self.config.gateway, self.identity, ca=self.config.ca)

    def run_once(self, now: Callable[[], float] = time.time) -> Pass:
        """Ask the inbox for new records, then try every record that is due."""
        done = Pass()
        with self.client() as client:
            try:
                done.discovered = self._poll(client, now())
            except ScanSealError as error:  # still retry what is queued: it may be another cause
                log.warning("inbox of %s unavailable: %s", self.config.gateway, error.reason)
            for item in self.state.due(now()):
                if now() < self.destination_retry_at:  # down: neither fetch nor C-STORE
                    done.deferred += 1
                    continue
                outcome = self._forward(client, item, now)
                if outcome == FORWARDED:
                    done.forwarded += 1
                elif outcome == HELD:
                    done.held += 1
                else:
                    done.failed += 1
        if done.deferred:
            log.info(
                "%d record(s) deferred: %s is down, tried again in %.0f s",
                done.deferred, self.config.destination, self.destination_retry_at - now(),
            )  # fmt: skip
        self.totals.add(done)
        return done

    def health(self, running: bool) -> dict[str, Any]:
        """The agent as ``/v1/health`` shows it: ``ok`` while its loop is ``running`` and its
        PACS answers; the destination, when it is tried again if it is down, its records by
        status and what its passes did."""
        up = self.destination_failures == 0
        found: dict[str, Any] = {"ok": running and up, "running": running,
                                 "destination": str(self.config.destination),
                                 "destination_up": up}  # fmt: skip
        if not up:
            found["retry_at"] = self.destination_retry_at
            found["reason"] = f"{self.config.destination} is down"
        if not running:
            found["reason"] = "the forwarding loop has stopped"
        found["records"] = self.state.counts()
        return found | {"totals": asdict(self.totals)}

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set; sleeps until the next poll or retry."""
        log.info(
            "forwarding records granted to %s at %s into %s",
            self.identity.address, self.config.gateway, self.config.destination,
        )  # fmt: skip
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the agent must outlive a bug in one pass; the log says what
                log.exception("forwarding pass failed")
            wake = time.time() + self.config.poll_seconds
            due = self.state.next_due()
            if due is not None:  # a record due while its PACS is down waits for the PACS
                due = max(due, self.destination_retry_at)
            stop.wait(max(0.05, min(wake, due if due is not None else wake) - time.time()))
        log.info("forwarding stopped")

    def _poll(self, client: GatewayClient, now: float) -> int:
        gateway = self.config.gateway
        cursor, added, more = self.state.cursor(gateway), 0, True
        while more:
            records, cursor, more = inbox_page(client.inbox(cursor), cursor)
            added += self.state.discovered(gateway, cursor, records, now)
        if added:
            log.info("%d new record(s) granted to %s", added, self.identity.address)
        return added

    def _forward(self, client: GatewayClient, item: Item, now: Callable[[], float]) -> str:
        """Fetch, check and C-STORE one record: its new status (FORWARDED, HELD, or FAILED for
        an attempt that failed, whether or not it is retried)."""
        record, destination = item.manifest_cid, self.config.destination
        try:
            with tempfile.TemporaryDirectory(prefix="scanseal-agent-") as scratch:
                opened = client.fetch(record, Path(scratch) / "instance.dcm")
                labels = Labels.read(opened.path)
                if labels is not None:
                    self.state.labelled(record, labels)
                if self._held(record, opened.manifest, now()):
                    return HELD
                forward([opened.path], destination, self.config.calling_ae)
        except ScanSealError as error:
            if isinstance(error, DestinationUnavailable):
                self._destination_down(now())
            self._failure(item, error, now())
            return FAILED
        self.destination_failures = 0
        self.state.done(record, now())
        log.info("record %s forwarded to %s", record, destination)
        return FORWARDED

    def _held(self, record: str, manifest: Manifest, now: float) -> bool:
        """Warn for a record flagged at sealing (its signed manifest, checked again); under the
        ``hold`` policy keep it out of the PACS, with the verdict as the reason."""
        verdict = screen_verdict(manifest)
        if verdict is None or not verdict.flagged:
            return False
        reason = verdict.describe()
        if self.config.flagged == "forward":
            log.warning('record %s: %s; forwarding it anyway (flagged = "forward")', record, reason)
            return False
        log.warning("record %s held, not forwarded: %s", record, reason)
        self.state.held(record, reason, now)
        return True

    def _destination_down(self, now: float) -> None:
        """Leave the PACS alone for the rest of this pass and, doubling, the next ones."""
        self.destination_failures += 1
        delay = self.config.backoff(self.destination_failures)
        self.destination_retry_at = now + delay
        log.warning(
            "%s is down (%d time(s) in a row); not tried again for %.0f s",
            self.config.destination, self.destination_failures, delay,
        )  # fmt: skip

    def _failure(self, item: Item, error: ScanSealError, now: float) -> None:
        """Retry later unless the record itself can never go to a PACS (not DICOM)."""
        final = isinstance(error, InvalidInput)
        attempt = item.attempts + 1
        if final:
            self.state.failed(item.manifest_cid, error.reason, now, None)
            log.error("record %s not forwarded, for good: %s", item.manifest_cid, error.reason)
            return
        delay = self.config.backoff(attempt)
        self.state.failed(item.manifest_cid, error.reason, now, now + delay)
        log.warning(
            "record %s not forwarded (attempt %d): %s; retrying in %.0f s",
            item.manifest_cid, attempt, error.reason, delay,
        )  # fmt: skip


def inbox_page(answer: dict[str, Any], cursor: int) -> tuple[list[str], int, bool]:
    """Records, next cursor and whether more follow; IntegrityError for a malformed answer or a
    cursor that moves backwards (which would re-announce records)."""
    try:
        records = [str(entry["record"]) for entry in answer["records"]]
        after, more = int(answer["next"]), answer["more"]
    except (KeyError, TypeError, ValueError):
        raise IntegrityError("the gateway's inbox answer is malformed") from None
    if after < cursor or not isinstance(more, bool):
        raise IntegrityError("the gateway's inbox answer is malformed")
    return records, after, more


def log_to_stderr() -> None:
    """Give the agent's log a stderr handler when nothing else configured one."""
    to_stderr(log)
