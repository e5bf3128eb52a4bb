"""Group commit of the grants that end uploads: one ``grantAccessBatch`` for several uploads.

An upload is acknowledged only once its recipients hold their grants on the ledger; in batched
mode that first grant is also what reserves the record against a ``storeImage`` under its CID
(docs/LEDGER.md, *Batch records*). Each grant used to be a transaction of its own. Here the
uploads that reach this point together (several associations or clients at once) share one:
each caller queues its (record, grantee) pairs and takes the flush lock; whoever gets it first
waits for the ledger lock, then sends the pairs of everyone queued by then, and the others find
theirs done when the flush lock comes to them. Nobody returns before its own pairs are mined,
so the rule "reserved and granted before acknowledged" holds for each upload as before. A
flush first waits up to 20 ms for the uploads already under way (storing, registering) to queue
theirs; a lone upload never waits.

A batch is all or nothing on chain; when it fails, each upload's pairs are sent again on their
own, so one upload's refusal (say, a recipient deregistered meanwhile) fails only that upload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from scanseal.errors import LedgerUnavailable
from scanseal.ledger import MAX_BATCH_GRANTS, Ledger
from scanseal.transfer import Records

_LINGER_SECONDS = 0.02
"""How long a flush waits for uploads under way to queue their pairs (it waits only while
some are: a lone upload, one association's next instance, never waits)."""
Pair = tuple[bytes, str]
"""A record (binary CID) and the account to grant it to."""


@dataclass
class _Ticket:
    pairs: list[Pair]
    done: bool = False
    granted: bool = False
    error: BaseException | None = field(default=None)


class GrantBatcher:
    """Grants for ``records``' operator, several callers' pairs per transaction."""

    def __init__(
        self, ledger: Ledger, records: Records, locked: Callable[[Callable[[], None]], None]
    ) -> None:
        self._ledger = ledger
        self._records = records
        self._operator: LocalAccount = records.operator
        self._locked = locked
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._arrived = threading.Condition(self._queue_lock)
        self._coming = 0
        """Uploads under way (:meth:`upload`) that have not queued their pairs yet."""
        self._local = threading.local()
        self._flush_lock = threading.Lock()
        self.transactions = 0
        """grantAccessBatch transactions sent (each covers one or more uploads)."""

    @contextmanager
    def upload(self) -> Iterator[None]:
        """Around an upload that will ask for grants once it is stored and registered: a flush
        that starts meanwhile waits a little (at most ``_LINGER_SECONDS``) for its pairs."""
        with self._queue_lock:
            self._coming += 1
        self._local.coming = True
        try:
            yield
        finally:
            self._arrive()

    def grant(self, record: bytes, accounts: Sequence[str]) -> None:
        """Return once each of ``accounts`` that was never granted ``record`` holds a grant on
        the ledger; raises the ledger's refusal of this record's grants."""
        ticket = _Ticket([(record, account) for account in accounts])
        with self._queue_lock:
            self._queue.append(ticket)
        self._arrive()
        with self._flush_lock:
            if not ticket.done:
                self._linger()
                # the queue is taken once the ledger lock is held: what was queued while
                # waiting for it goes in the same transaction
                self._locked(lambda: self._flush(self._take()))
        if not ticket.granted:
            raise ticket.error or LedgerUnavailable("the grants of this upload were not sent")

    def _arrive(self) -> None:
        """This thread's upload no longer keeps a flush waiting (queued, or ended)."""
        if getattr(self._local, "coming", False):
            self._local.coming = False
            with self._arrived:
                self._coming -= 1
                self._arrived.notify_all()

    def _linger(self) -> None:
        """Wait until every upload under way has queued its pairs, at most a short while."""
        deadline = time.monotonic() + _LINGER_SECONDS
        with self._arrived:
            while self._coming > 0 and (left := deadline - time.monotonic()) > 0:
                self._arrived.wait(left)

    def _take(self) -> list[_Ticket]:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        return batch

    def _flush(self, batch: list[_Ticket]) -> None:
        """Send every ticket's pairs still ungranted (in transactions of at most
        MAX_BATCH_GRANTS pairs); on a refusal, each ticket's pairs on their own."""
        try:
            wanted = [pair for ticket in batch for pair in self._wanted(ticket)]
            for start in range(0, len(wanted), MAX_BATCH_GRANTS):
                self._send(wanted[start : start + MAX_BATCH_GRANTS])
            for ticket in batch:
                ticket.granted = True
        except Exception:
            for ticket in batch:
                try:
                    self._send(self._wanted(ticket))
                    ticket.granted = True
                except Exception as error:  # this upload's own refusal, raised to its caller
                    ticket.error = error
        finally:
            for ticket in batch:
                ticket.done = True

    def _wanted(self, ticket: _Ticket) -> list[Pair]:
        """The ticket's pairs not granted yet (an upload repeated while its first attempt was
        queued finds them granted)."""
        by_record: dict[bytes, list[str]] = {}
        for record, account in ticket.pairs:
            by_record.setdefault(record, []).append(account)
        return [
            (record, account)
            for record, accounts in by_record.items()
            for account in self._records.ungranted(record, accounts)
        ]

    def _send(self, pairs: list[Pair]) -> None:
        if pairs:
            self._ledger.grant_many(self._operator, pairs)
            self.transactions += 1
