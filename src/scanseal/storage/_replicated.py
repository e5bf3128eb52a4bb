"""Replication of objects over several IPFS nodes, with a local copy that is never lost.

Two modes (``[storage] replicate``, docs/STORAGE.md). ``sync`` (the default): a put lands in
the local embedded store first (that computes the CID and means a failed replication loses
nothing), then streams to every node in parallel before it returns. ``queued``: a put returns
once the object and a replication-queue row naming it are committed (fsynced) locally, and a
background :class:`~scanseal.storage._replicator.Replicator` pushes it until ``min_replicas``
nodes confirm it; :meth:`ReplicatedStore.lag` says how far behind that is.

A node counts as a replica only when it pinned the object and the CID it computed equals ours.
A sync put succeeds when at least ``min_replicas`` nodes count; otherwise it raises
StorageUnavailable naming each node's failure (a queued put keeps the object queued and
retries with back-off: see ``_replicator``). A node that refuses or drops the connection is
retried with exponential backoff; a node that stays silent past the timeout is not (another
attempt would only wait another timeout, and a request must not wait several). Either way it
is reported: in the put report, in the exception and in the log, never silently skipped.

Reads come from the local copy when it is complete; otherwise from the nodes in turn, with every
block verified. A node that fails mid-read is replaced by the next one at the same file offset;
a node that serves wrong bytes raises IntegrityError (corruption is an alarm, not a fallback).
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from scanseal.errors import IntegrityError, InvalidInput, NotFound, StorageUnavailable
from scanseal.storage._api import BlobStore, ObjectStat, StoreUsage
from scanseal.storage._builder import CHUNK_SIZE, DagBuilder, Readable
from scanseal.storage._cid import CID, DAG_PB
from scanseal.storage._dagpb import decode_file_node
from scanseal.storage._embedded import EmbeddedStore
from scanseal.storage._kubo import KuboNode, NodeSilent, NodeStream
from scanseal.storage._queue import ReplicationLag, ReplicationQueue
from scanseal.storage._replicator import Replicator
from scanseal.storage._walk import iter_file, open_verified

log = logging.getLogger("scanseal.storage")
log.addHandler(logging.NullHandler())  # a library reports; the application decides what shows
_T = TypeVar("_T")
_TRANSPORT = (OSError, http.client.HTTPException, StorageUnavailable)
Progress = Callable[[str, int], None]
"""Called as ``progress(node_url, bytes_sent_so_far)`` while an upload runs."""
_PUSHES_AT_ONCE = 8
"""Puts replicated at the same time (request threads) that each find a pool thread free per
further node; more wait for one."""
MODES = ("sync", "queued")


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """What happened to one node during a put."""

    node: str
    ok: bool
    attempts: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class PutReport:
    """The replicas a put reached and the nodes that failed, with why."""

    cid: str
    outcomes: tuple[NodeOutcome, ...]

    @property
    def replicas(self) -> tuple[str, ...]:
        return tuple(o.node for o in self.outcomes if o.ok)

    @property
    def failures(self) -> tuple[NodeOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """One node as ``scanseal storage status`` shows it."""

    node: str
    up: bool
    version: str = ""
    latency_ms: float = 0.0
    error: str = ""


class ReplicatedStore(BlobStore):
    """A BlobStore over a local embedded store and one or more kubo RPC nodes."""

    def __init__(
        self,
        local: EmbeddedStore,
        nodes: list[KuboNode],
        *,
        min_replicas: int = 2,
        retries: int = 3,
        backoff: float = 0.2,
        progress: Progress | None = None,
        replicate: str = "sync",
        drain_seconds: float = 5.0,
        max_lag_seconds: float = 300.0,
        background: bool = True,
    ) -> None:
        """``replicate``: ``sync`` or ``queued`` (module docstring). ``background``: run the
        replicator (False for a reader such as ``storage status``: it only looks at the queue).
        ``drain_seconds``: how long :meth:`close` lets the queue drain before leaving the rest
        queued for the next open. ``max_lag_seconds``: the oldest queued object's wait past
        which health reports the store failing."""
        if not nodes:
            raise InvalidInput("the kubo backend needs at least one node in [storage] nodes")
        if not 1 <= min_replicas <= len(nodes):
            raise InvalidInput(
                f"min_replicas is {min_replicas} but {len(nodes)} node(s) are configured"
            )
        if replicate not in MODES:
            raise InvalidInput(f"storage replicate must be one of {MODES}, got {replicate!r}")
        self.local = local
        self.nodes = nodes
        self.min_replicas = min_replicas
        self.retries = retries
        self.backoff = backoff
        self.progress = progress
        self.last_report: PutReport | None = None
        self.last_read_failures: list[str] = []
        self._pool: ThreadPoolExecutor | None = None
        """The threads that push to the second and later nodes (started at the first put that
        needs them, kept for the store's life): starting a pool per put cost more than a small
        object's push."""
        self._pool_lock = threading.Lock()
        self.mode = replicate
        self.drain_seconds = drain_seconds
        self.max_lag_seconds = max_lag_seconds
        self.queue = ReplicationQueue(local, [node.url for node in nodes], min_replicas)
        self._replicator: Replicator | None = None
        if background:  # also in sync mode: a queue a queued process left is drained, not lost
            self._replicator = Replicator(
                self.queue, [node.url for node in nodes], self._push_once,
                backoff=backoff, workers=_PUSHES_AT_ONCE,
            )  # fmt: skip
            self._replicator.start()

    def close(self) -> None:
        if self._replicator is not None:
            self._replicator.stop(self.drain_seconds)
            self._replicator = None
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        self.local.close()

    def usage(self) -> StoreUsage:
        """The local copy's (the nodes report through :meth:`health`)."""
        return self.local.usage()

    def put(self, stream: Readable) -> str:
        if self.mode == "sync":
            cid = self.local.put(stream)
            self.replicate(cid)
            return cid
        cid = self.local.put(stream, also=self.queue.enqueue_in)  # one commit: blocks and row
        self.last_report = None
        self.wake()
        return cid

    def wake(self) -> None:
        """Have the replicator look at the queue now (after a put, or a node came back)."""
        if self._replicator is not None:
            self._replicator.wake()

    def lag(self) -> ReplicationLag:
        """Queued objects, how long the oldest waited, and the nodes failing them."""
        return self.queue.lag(self.mode)

    def drain(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the queue to empty; True when it did."""
        if self._replicator is None:
            return self.queue.next_due() is None
        return self._replicator.wait_drained(seconds)

    def replicate(self, cid: str) -> PutReport:
        """Make sure at least ``min_replicas`` nodes pin ``cid`` (held locally)."""
        if not self.local.has(cid):
            raise InvalidInput(f"{cid} is not complete in the local store; cannot replicate it")
        report = PutReport(cid, self._push_all(cid))
        self.last_report = report
        for failure in report.failures:
            log.warning("replica on %s failed: %s", failure.node, failure.error)
        if len(report.replicas) < self.min_replicas:
            reasons = "; ".join(f.error for f in report.failures)
            raise StorageUnavailable(
                f"{cid} is stored locally but only {len(report.replicas)} of the "
                f"{self.min_replicas} required replicas were made ({reasons})"
            )
        return report

    def get(self, cid: str) -> BinaryIO:
        root = CID.parse(cid)
        if self.local.has(cid):
            return self.local.get(cid)
        reader = _FailoverReader(self, root)
        return open_verified(reader.pieces(), reader.close)

    def has(self, cid: str) -> bool:
        if self.local.has(cid):
            return True
        return any(self._quiet(lambda n: n.is_pinned(cid), node) for node in self.nodes)

    def pin(self, cid: str) -> None:
        if self.local.has(cid):
            self.local.pin(cid)
            if self.mode == "queued":
                self.queue.enqueue(cid)
                self.wake()
            else:
                self.replicate(cid)
            return

        def pin_on(node: KuboNode) -> bool:
            node.pin_add(cid)
            return True

        pinned = [node for node in self.nodes if self._quiet(pin_on, node)]
        if len(pinned) < self.min_replicas:
            raise StorageUnavailable(f"{cid}: only {len(pinned)} node(s) could pin it")

    def unpin(self, cid: str) -> None:
        self.local.unpin(cid)
        self.queue.forget(cid)
        errors = []
        for node in self.nodes:
            try:
                if node.is_pinned(cid):
                    self._retry(node, lambda n: n.pin_rm(cid))
            except StorageUnavailable as error:
                errors.append(error.reason)
        if errors:
            raise StorageUnavailable(f"{cid} unpinned locally, but: " + "; ".join(errors))

    def pins(self) -> list[str]:
        return self.local.pins()

    def stat(self, cid: str) -> ObjectStat:
        replicas = tuple(self.replica_map([cid])[cid])
        if self.local.has(cid):
            local = self.local.stat(cid)
            return ObjectStat(local.cid, local.size, local.blocks, local.pinned, replicas)
        root = CID.parse(cid)
        reader = _FailoverReader(self, root)
        block = reader.fetch_verified(root)
        size = len(block)
        if root.codec == DAG_PB:
            size = decode_file_node(block, root).filesize or 0
        return ObjectStat(str(root), size, 0, False, replicas)

    def health(self) -> list[NodeHealth]:
        """Ask every node for its version; report latency or the error."""
        out = []
        for node in self.nodes:
            start = time.perf_counter()
            try:
                version = node.version()
            except StorageUnavailable as error:
                reason = error.reason.removeprefix(f"{node.url}: ")
                out.append(NodeHealth(node.url, False, error=reason))
                continue
            out.append(NodeHealth(node.url, True, version, (time.perf_counter() - start) * 1e3))
        return out

    def replica_map(self, cids: list[str]) -> dict[str, list[str]]:
        """For each CID, the nodes that pin it (nodes that are down are left out)."""
        out: dict[str, list[str]] = {cid: [] for cid in cids}
        for node in self.nodes:
            for cid in cids:
                if self._quiet(lambda n, c=cid: n.is_pinned(c), node):  # type: ignore[misc]
                    out[cid].append(node.url)
        return out

    # Internals.

    def _push_all(self, cid: str) -> tuple[NodeOutcome, ...]:
        """Push ``cid`` to every node at once: the first on the calling thread, the others on
        the store's pool (one node: no other thread at all)."""
        first, *others = self.nodes
        if not others:
            return (self._push(first, cid),)
        pool = self._others_pool()
        pending = [pool.submit(self._push, node, cid) for node in others]
        mine = self._push(first, cid)
        return (mine, *(future.result() for future in pending))

    def _others_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                workers = _PUSHES_AT_ONCE * (len(self.nodes) - 1)
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="replica-push")
            return self._pool

    def _push_once(self, url: str, cid: str) -> str | None:
        """The replicator's push: one attempt (the queue does the retrying); None when the node
        pinned ``cid`` and computed the same CID, else why not."""
        node = next(node for node in self.nodes if node.url == url)
        outcome = self._push(node, cid, retries=0)
        return None if outcome.ok else outcome.error

    def _push(self, node: KuboNode, cid: str, retries: int | None = None) -> NodeOutcome:
        attempts = 0

        def upload(n: KuboNode) -> None:
            nonlocal attempts
            attempts += 1
            # a new object is on no node: ask only when retrying (the failed attempt may have
            # pinned it); a node adding what it holds already answers the same CID anyway
            if attempts > 1 and n.is_pinned(cid):
                return
            builder = DagBuilder()
            with self.local.get(cid) as source:
                returned = n.add(self._sent(n, source, builder))
            if returned != cid or str(builder.finish()) != cid:
                raise IntegrityError(f"{n.url} computed CID {returned}, expected {cid}")

        try:
            self._retry(node, upload, retries)
        except (StorageUnavailable, IntegrityError, NotFound) as error:
            return NodeOutcome(node.url, False, attempts, error.reason)
        return NodeOutcome(node.url, True, attempts)

    def _sent(self, node: KuboNode, source: BinaryIO, builder: DagBuilder) -> Iterator[bytes]:
        sent = 0
        while chunk := source.read(CHUNK_SIZE):
            builder.feed(chunk)
            yield chunk
            sent += len(chunk)
            if self.progress is not None:
                self.progress(node.url, sent)

    def _retry(
        self, node: KuboNode, action: Callable[[KuboNode], _T], retries: int | None = None
    ) -> _T:
        """Run ``action`` with exponential backoff on transport failures; a node that timed out
        is not asked again (see the module docstring)."""
        delay = self.backoff
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                return action(node)
            except IntegrityError:
                raise
            except _TRANSPORT as error:
                reason = error.reason if isinstance(error, StorageUnavailable) else str(error)
                if not reason.startswith(node.url):
                    reason = f"{node.url}: {reason}"
                if isinstance(error, NodeSilent | TimeoutError):
                    raise StorageUnavailable(f"{reason} (not retried)") from None
                if attempt == retries:
                    tried = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise StorageUnavailable(f"{reason}{tried}") from None
                log.info("%s: %s; retrying in %.2fs", node.url, reason, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _quiet(self, action: Callable[[KuboNode], object], node: KuboNode) -> bool:
        try:
            return bool(action(node))
        except StorageUnavailable as error:
            log.warning("%s", error.reason)
            return False


class _FailoverReader:
    """Reads one file from the nodes in turn, moving on when a node stops answering."""

    def __init__(self, store: ReplicatedStore, root: CID) -> None:
        self._store = store
        self._root = root
        self._order = list(store.nodes)
        self._index = 0
        self._response: NodeStream | None = None
        self._position = -1
        self._failures: list[str] = []
        store.last_read_failures = self._failures

    @property
    def _node(self) -> KuboNode:
        return self._order[self._index]

    def pieces(self) -> Iterator[bytes]:
        try:
            yield from iter_file(self._root, self._fetch, self._read_leaf)
        except IntegrityError as error:
            raise IntegrityError(f"{error.reason} (served by {self._node.url})") from None
        finally:
            self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None

    def _fetch(self, cid: CID) -> bytes:
        return self._each_node(lambda node: node.block_get(str(cid)))

    def fetch_verified(self, cid: CID) -> bytes:
        """One block from the first node that answers, checked against its CID."""
        block = self._fetch(cid)
        cid.check(block, self._node.url)
        return block

    def _read_leaf(self, cid: CID, offset: int, size: int | None) -> bytes:
        if size is None:
            return self._fetch(cid)

        def read(node: KuboNode) -> bytes:
            if self._response is None or self._position != offset:
                self.close()
                self._response = node.open_cat(str(self._root), offset)
                self._position = offset
            data = self._response.read(size)
            if len(data) != size:
                self.close()
                raise StorageUnavailable(f"{node.url}: cat ended after {len(data)} of {size} bytes")
            self._position += size
            return data

        return self._each_node(read)

    def _each_node(self, action: Callable[[KuboNode], _T]) -> _T:
        while True:
            node = self._node
            try:
                return self._store._retry(node, action)
            except StorageUnavailable as error:
                self.close()
                self._failures.append(error.reason)
                log.warning("read from %s failed: %s", node.url, error.reason)
                if self._index + 1 >= len(self._order):
                    raise StorageUnavailable(
                        f"no node could serve {self._root}: " + "; ".join(self._failures)
                    ) from None
                self._index += 1
