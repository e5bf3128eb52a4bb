"""The background replicator: pushes queued objects to nodes until ``min_replicas`` hold them.

One thread per store takes due objects from the queue (:mod:`._queue`), oldest first, and
pushes each to the configured nodes that do not confirm it yet, on a small pool (all nodes of
a batch at once). Each push is one attempt; the retrying is the queue's:

- a node that fails is *backed off* as a whole (``backoff`` seconds, doubled on each further
  failure up to :data:`MAX_DELAY`, reset by its first success); a node not known to work (at
  start, or after a failure) is probed with one object at a time, in the background (a node
  that went silent holds up only its probe), and gets whole batches once it took one. So a
  node that is down costs one refused connection per back-off period, not one per object;
- an object that does not reach ``min_replicas`` is retried when the first of its missing nodes
  is due again (or after its own back-off, for a failure that is the object's: a node that
  computes another CID).

The thread starts when the store opens (replaying what an earlier process left queued) and is
woken by each put. :meth:`Replicator.stop` lets it drain for a bounded time, then leaves the
rest queued for the next open; what it was pushing when stopped or killed is still queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from scanseal.storage._queue import Due, ReplicationQueue

log = logging.getLogger("scanseal.storage")

MAX_DELAY = 60.0
"""Longest back-off of a node or an object, in seconds."""
_BATCH = 16
"""Objects taken from the queue per round."""
_IDLE = 5.0
"""Longest sleep when nothing is due (a put wakes the thread earlier)."""

Push = Callable[[str, str], str | None]
"""``push(node_url, cid)``: one attempt; None when the node pinned it with our CID, else why."""


class Replicator:
    """Drains one store's replication queue on a background thread."""

    def __init__(
        self,
        queue: ReplicationQueue,
        nodes: Sequence[str],
        push: Push,
        *,
        backoff: float,
        workers: int,
    ) -> None:
        self._queue = queue
        self._nodes = tuple(nodes)
        self._push = push
        self._backoff = max(backoff, 0.05)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="replicate")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._node_ready: dict[str, float] = {}
        self._node_delay: dict[str, float] = {}
        self._good: set[str] = set()
        """Nodes whose last push worked: they get whole batches, the others one probe."""
        self._probes: dict[str, tuple[Due, Future[str | None]]] = {}
        self.rounds = 0
        self._thread = threading.Thread(target=self._run, name="replicator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, drain_seconds: float) -> None:
        """Let the queue drain for up to ``drain_seconds``, then stop; what is left stays queued
        (an attempt still running after another ``drain_seconds`` is abandoned: its object is
        still queued, the next open pushes it again)."""
        self.wait_drained(drain_seconds)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=max(drain_seconds, 0.1))
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait_drained(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until nothing is queued; True when the queue is empty."""
        deadline = time.monotonic() + seconds
        while True:
            if self._queue.next_due() is None:
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not self._thread.is_alive():
                return False
            self._wake.set()
            with self._idle:
                self._idle.wait(timeout=min(left, 0.05))

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = self._round()
            except Exception as error:  # a closed store while stopping, a full disk…
                if self._stopping.is_set():
                    return
                log.warning("replication round failed: %s", error)
                self._stopping.wait(_IDLE)  # its objects are still due: do not spin
                continue
            with self._idle:
                self._idle.notify_all()
            if not worked:
                self._sleep()

    def _sleep(self) -> None:
        soonest = self._queue.next_due()
        wait = _IDLE if soonest is None else min(_IDLE, max(soonest - time.time(), 0.0))
        if wait > 0:
            self._wake.wait(timeout=wait)
        self._wake.clear()

    def _round(self) -> bool:
        """Push one batch of due objects; False when nothing was due or finished."""
        worked = self._collect_probes()
        due = self._queue.due(_BATCH)
        if not due:
            return worked
        now = time.time()
        jobs: dict[str, list[str]] = {}
        for item in due:
            jobs[item.cid] = []
            for node in self._missing(item):
                if self._node_ready.get(node, 0.0) > now or node in self._probes:
                    continue
                if node in self._good:
                    jobs[item.cid].append(node)
                else:  # not known to work (yet, or again): one object, not waited for
                    self._probe(node, item)
        futures = {
            (cid, node): self._pool.submit(self._push, node, cid)
            for cid, nodes in jobs.items()
            for node in nodes
        }
        results = {key: future.result() for key, future in futures.items()}
        for node in {node for _, node in results}:
            errors = [error for (_, n), error in results.items() if n == node]
            self._node_outcome(node, all(error is not None for error in errors))
        for item in due:
            self._settle(item, {n: results[(item.cid, n)] for n in jobs[item.cid]})
        self.rounds += 1
        return True

    def _probe(self, node: str, item: Due) -> None:
        """Push one object to a node in the background; the loop settles it when it is done,
        so a node that went silent holds up nothing but its probe."""
        future = self._pool.submit(self._push, node, item.cid)
        future.add_done_callback(lambda _: self._wake.set())
        self._probes[node] = (item, future)

    def _collect_probes(self) -> bool:
        done = [(node, probe) for node, probe in self._probes.items() if probe[1].done()]
        for node, (item, future) in done:
            del self._probes[node]
            try:
                error = future.result()
            except Exception as failure:  # a defect: reported like a failed push
                error = f"{type(failure).__name__}: {failure}"
            self._node_outcome(node, error is not None)
            self._settle(item, {node: error})
            if error is None:  # the node works: what waited for it is due now
                self._queue.release()
        return bool(done)

    def _missing(self, item: Due) -> list[str]:
        return [node for node in self._nodes if node not in item.confirmed]

    def _node_outcome(self, node: str, failed: bool) -> None:
        if not failed:
            self._node_ready.pop(node, None)
            self._node_delay.pop(node, None)
            self._good.add(node)
            return
        self._good.discard(node)
        delay = self._node_delay.get(node, self._backoff / 2) * 2
        self._node_delay[node] = min(delay, MAX_DELAY)
        self._node_ready[node] = time.time() + self._node_delay[node]

    def _settle(self, item: Due, outcomes: dict[str, str | None]) -> None:
        confirmed = [node for node, error in outcomes.items() if error is None]
        failed = [(node, error) for node, error in outcomes.items() if error is not None]
        for node, error in failed:
            log.warning("queued replica of %s on %s failed: %s", item.cid, node, error)
        own = min(self._backoff * 2**item.attempts, MAX_DELAY)
        waiting = [  # a node being probed: until its probe answers (that makes all due)
            time.time() + MAX_DELAY if node in self._probes else self._node_ready.get(node, 0.0)
            for node in self._missing(item)
            if node not in confirmed
        ]
        retry_at = max(min(waiting, default=0.0), time.time() + (own if failed else 0.0))
        if self._queue.settle(item.cid, confirmed, failed, retry_at):
            log.info("%s replicated (queued %d attempt(s))", item.cid, item.attempts + 1)
