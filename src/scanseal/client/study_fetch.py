"""Fetching studies: several records at once, each fetched, checked, described and opened once.

``scanseal fetch STUDY`` brings the recipient's catalogue (``transfer.catalogue``) up to date
through a :class:`StudyFetcher`, the catalogue's gateway: it fetches each newly announced
record in one of ``FETCHES_AHEAD`` threads (hashing, AES-GCM, TLS and the disk release the GIL,
so the next records download and open while the catalogue takes one), parses the bundle once,
checks its signature and unwraps its key once (``transfer.checked.unlock_record``) to describe
it and, when it belongs to a study being fetched and is not on disk yet, to open it into
``DIR/<Study UID>/<Series UID>/<SOP UID>.dcm``. :meth:`StudyFetcher.open_later` fetches and
opens in the same threads the records described before (by an earlier ``inbox``). Every check
of ``open_bundle`` runs for each; a record that cannot be opened is kept in
:attr:`StudyFetcher.failed` with why, and the others go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from scanseal._disk import disk_error
from scanseal.client.gateway_client import GatewayClient, open_bundle, parse_bundle
from scanseal.errors import GatewayUnavailable, InvalidInput, ScanSealError
from scanseal.transfer import OpenedFile
from scanseal.transfer.catalogue import Described, already_fetched, study_path

FETCHES_AHEAD: Final = 2
"""Records fetched and opened at once (the gateway answers fetches on two threads)."""


class StudyFetcher:
    """The client as the catalogue's gateway, which also opens at once each newly described
    record of the studies being fetched: a first fetch downloads every record once, not once
    to describe it and again to write it. ``FETCHES_AHEAD`` threads each fetch, check,
    describe and open one record (hashing, decryption, TLS and the disk release the GIL), so
    the next records download and open while the catalogue takes this one."""

    def __init__(
        self,
        client: GatewayClient,
        studies: list[str],
        output: Path,
        listed: set[str],
        on_opened: Callable[[OpenedFile, Described, Path], None],
    ) -> None:
        if client.identity is None:
            raise InvalidInput("fetching a study needs an identity (--as NAME)")
        self.client, self.url, self.identity = client, client.url, client.identity
        self.studies, self.listed, self.output = set(studies), listed, output
        self.opened: set[str] = set()
        """Records opened while described (``on_opened`` was called for each, in order)."""
        self._on_opened = on_opened
        self.failed: dict[str, ScanSealError] = {}
        """Records described whose opening failed (a bad payload, a full disk): named later."""
        self._pool = ThreadPoolExecutor(FETCHES_AHEAD, thread_name_prefix="fetch")
        self._upcoming: deque[str] = deque()
        self._ahead: dict[str, Future[Fetched]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def inbox(self, after: int = 0) -> dict[str, Any]:
        return self.client.inbox(after)

    def will_describe(self, records: list[str]) -> None:
        """The catalogue's next records, in order: fetch up to FETCHES_AHEAD of them ahead."""
        self._upcoming = deque(records)
        self._fetch_ahead()

    def _fetch_ahead(self) -> None:
        while len(self._ahead) < FETCHES_AHEAD and self._upcoming:
            record = self._upcoming.popleft()
            self._ahead[record] = self._pool.submit(self._fetch_one, record)

    def describe(self, record: str) -> Described:
        ahead = self._ahead.pop(record, None)
        self._fetch_ahead()  # the next ones download while this one is taken
        fetched = self._fetch_one(record) if ahead is None else ahead.result()
        if fetched.error is not None:
            self.failed[record] = fetched.error
        elif fetched.opened is not None:
            self._on_opened(fetched.opened, fetched.entry, fetched.target)
            self.opened.add(record)
        return fetched.entry

    def _fetch_one(self, record: str) -> Fetched:
        """In a fetch thread: one signed fetch, the bundle parsed once, its signature checked
        and its key unwrapped once to describe it and, when it is wanted, to open it."""
        bundle = parse_bundle(self.client.fetch_bundle(record), record, self.identity)
        entry, unlocked = self.client.describe_unlocked(bundle, record)
        target = study_path(self.output, entry)
        wanted = entry.study in self.studies or record in self.listed
        if not wanted or already_fetched(target, entry):
            return Fetched(entry, target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            opened = open_bundle(bundle, record, self.identity, target, unlocked=unlocked)
        except GatewayUnavailable:
            raise
        except ScanSealError as error:
            return Fetched(entry, target, error=error)
        except OSError as error:
            return Fetched(entry, target, error=disk_error(error, target))
        return Fetched(entry, target, opened)

    def open_later(self, entry: Described, target: Path) -> Future[OpenedFile]:
        """Fetch and open a record described before, in a fetch thread."""
        return self._pool.submit(self._open_one, entry.record, target)

    def _open_one(self, record: str, target: Path) -> OpenedFile:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise disk_error(error, target) from None
        return self.client.fetch(record, target)


@dataclass(frozen=True)
class Fetched:
    """One record as a fetch thread left it: described, and opened or failed when wanted."""

    entry: Described
    target: Path
    opened: OpenedFile | None = None
    error: ScanSealError | None = None
