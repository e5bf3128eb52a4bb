"""What ``GET /v1/health`` and ``/metrics`` report about the gateway's dependencies.

:class:`Health` runs one probe per dependency — the chain (reachable, its head block), the block
store and the gateway's state directory (a probe write, free space), the batched log (pending
entries, their wait, the time since the last anchor), and whatever the server adds: the DICOM
SCP, the forwarding agent. Each probe answers a JSON object with ``ok``; a probe that raises,
or does not answer within :data:`PROBE_SECONDS`, is failing with its reason. Any failing probe
makes the answer ``"status": "failing"`` with HTTP 503; until the warm-up is done it stays
``"starting"`` (503) as before. A probe still running from an earlier request is waited for
again rather than started twice, so a hung node never piles up threads.

:class:`DependencyCollector` gives the same state to Prometheus at each scrape.
docs/OPERATIONS.md describes the answer and the series.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scanseal._disk import probe_write
from scanseal.errors import ScanSealError
from scanseal.ledger import LedgerStatus
from scanseal.service.gateway import Gateway
from scanseal.storage import ReplicatedStore

PROBE_SECONDS: Final = 5.0
"""How long ``/v1/health`` waits for its probes before it calls the silent ones failing."""
_OVERDUE_SLACK: Final = 60.0
"""A batch is overdue (failing) once its oldest entry has waited twice ``batch_seconds`` and
this many seconds more: its anchors are not getting through."""

Probe = Callable[[], dict[str, Any]]
"""One dependency's state as a JSON object with ``ok`` (raising: failing, with the reason)."""
Counts = Callable[[], Mapping[str, int]]


@dataclass(frozen=True)
class Watch:
    """What the server adds to the gateway's own dependencies: more probes (the SCP, the
    agent) and the agent's counts for /metrics (what its passes did; its records by status)."""

    probes: Mapping[str, Probe] = field(default_factory=dict)
    agent_totals: Counts | None = None
    agent_records: Counts | None = None


class Health:
    """The probes of one gateway and the ones the server adds, run on a small pool."""

    def __init__(self, gateway: Gateway, extra: Mapping[str, Probe] | None = None) -> None:
        self._gateway = gateway
        self.probes: dict[str, Probe] = {
            "chain": self._chain, "store": self._store, "state": self._state,
        }  # fmt: skip
        if gateway.ledger.mode == "batched":
            self.probes["batch"] = self._batch
        self.probes.update(extra or {})
        self._pool = ThreadPoolExecutor(len(self.probes), thread_name_prefix="health")
        self._running: dict[str, Future[dict[str, Any]]] = {}
        self._starting = threading.Lock()  # two requests at once start each probe once

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and body: the gateway's identity and signing domain, ``status``,
        ``failing`` and one entry per dependency under its own name (``chain``, ``store``, …)."""
        futures = {name: self._start(name, probe) for name, probe in self.probes.items()}
        wait_for(futures.values(), timeout=PROBE_SECONDS)
        checks = {name: _outcome(future) for name, future in futures.items()}
        answer = self._gateway.health()
        failing = sorted(name for name, check in checks.items() if not check["ok"])
        if answer["status"] == "ok" and failing:
            answer["status"] = "failing"
        answer["failing"] = failing
        clash = sorted(set(checks) & set(answer))
        if clash:  # a probe named like a field of the signing domain would hide it
            raise RuntimeError(f"health probes named like answer fields: {clash}")
        answer.update(checks)
        return (200 if answer["status"] == "ok" else 503), answer

    def _start(self, name: str, probe: Probe) -> Future[dict[str, Any]]:
        with self._starting:
            running = self._running.get(name)
            if running is None or running.done():
                running = self._running[name] = self._pool.submit(probe)
            return running

    def _chain(self) -> dict[str, Any]:
        number, _ = self._gateway.locked(self._gateway.ledger.chain.head)
        return {"ok": True, "head": number, "chain_id": self._gateway.domain.chain_id}

    def _store(self) -> dict[str, Any]:
        store = self._gateway.store
        usage = store.usage()
        found: dict[str, Any] = {"ok": True}
        if usage is not None:
            found = {
                "ok": usage.unwritable is None, "root": usage.root,
                "stored_bytes": usage.stored_bytes, "free_bytes": usage.free_bytes,
            }  # fmt: skip
            if usage.unwritable is not None:
                found["reason"] = usage.unwritable
        if isinstance(store, ReplicatedStore):
            nodes = store.health()
            up = sum(node.up for node in nodes)
            found["nodes"] = [{"node": n.node, "up": n.up, "error": n.error or None} for n in nodes]
            if up < store.min_replicas:
                found["ok"] = False
                found.setdefault("reason", f"{up} node(s) up, min_replicas is {store.min_replicas}")
            found["replication"] = _replication(store)
            if found["replication"]["behind"]:
                found["ok"] = False
                found.setdefault("reason", "the oldest queued object waits past max_lag_seconds")
        return found

    def _state(self) -> dict[str, Any]:
        directory = self._gateway.config.state_dir
        unwritable = probe_write(directory)
        found: dict[str, Any] = {"ok": unwritable is None, "dir": str(directory)}
        found["free_bytes"] = _free(directory)
        if unwritable is not None:
            found["reason"] = unwritable
        return found

    def _batch(self) -> dict[str, Any]:
        status = self._gateway.ledger.status()
        found: dict[str, Any] = {
            "ok": not overdue(status), "pending": status.pending,
            "oldest_pending_seconds": _rounded(status.oldest_pending_seconds),
            "since_anchor_seconds": _rounded(status.since_anchor_seconds),
            "anchors": status.anchors, "transaction_failures": status.transaction_failures,
        }  # fmt: skip
        if not found["ok"]:
            found["reason"] = "the oldest pending entry waits far past batch_seconds"
        return found


def _replication(store: ReplicatedStore) -> dict[str, Any]:
    """The replication queue's lag (docs/STORAGE.md): mode, objects queued, the oldest wait,
    the nodes failing queued objects; ``behind`` once that wait passes max_lag_seconds."""
    lag = store.lag()
    return {
        "mode": lag.mode, "queued": lag.queued,
        "oldest_seconds": _rounded(lag.oldest_seconds),
        "behind": (lag.oldest_seconds or 0.0) > store.max_lag_seconds,
        "failing": {n.node: {"objects": n.failing_objects, "error": n.last_error}
                    for n in lag.nodes},
    }  # fmt: skip


def overdue(status: LedgerStatus) -> bool:
    """Whether the batched log's oldest pending entry has waited far longer than it should."""
    if status.batch_seconds is None or status.oldest_pending_seconds is None:
        return False
    return status.oldest_pending_seconds > 2 * status.batch_seconds + _OVERDUE_SLACK


def _outcome(future: Future[dict[str, Any]]) -> dict[str, Any]:
    if not future.done():
        return {"ok": False, "reason": f"no answer within {PROBE_SECONDS:g} s"}
    error = future.exception()
    if isinstance(error, ScanSealError):
        return {"ok": False, "reason": error.reason}
    if error is not None:
        return {"ok": False, "reason": f"{type(error).__name__}: {error}"}
    return future.result()


def _free(directory: Any) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


class DependencyCollector(Collector):
    """The ledger, the store and (when given) the agent, read at each scrape."""

    def __init__(self, gateway: Gateway, watch: Watch) -> None:
        self._gateway = gateway
        self._agent_totals = watch.agent_totals
        self._agent_records = watch.agent_records

    def collect(self) -> Iterator[Metric]:
        yield from _ledger_families(self._gateway.ledger.status())
        usage = self._gateway.store.usage()
        if usage is not None:
            if usage.stored_bytes is not None:
                yield _gauge("scanseal_store_bytes", "Bytes of the blocks the store holds",
                             usage.stored_bytes)  # fmt: skip
            if usage.free_bytes is not None:
                yield _gauge("scanseal_store_free_bytes", "Free disk under the store",
                             usage.free_bytes)  # fmt: skip
            yield _gauge("scanseal_store_writable", "1 when a probe write to the store works",
                         int(usage.unwritable is None))  # fmt: skip
        if isinstance(self._gateway.store, ReplicatedStore):
            yield from _replication_families(self._gateway.store)
        if self._agent_totals is not None:
            yield from _agent_families(self._agent_totals(), self._agent_records)


def _ledger_families(status: LedgerStatus) -> Iterator[Metric]:
    yield _gauge("scanseal_ledger_pending_entries", "Batched entries not anchored yet",
                 status.pending)  # fmt: skip
    yield _gauge("scanseal_ledger_anchor_lag_seconds",
                 "How long the oldest pending entry has waited (0: none waits)",
                 status.oldest_pending_seconds or 0.0)  # fmt: skip
    if status.since_anchor_seconds is not None:
        yield _gauge("scanseal_ledger_since_anchor_seconds", "Seconds since the latest anchor",
                     status.since_anchor_seconds)  # fmt: skip
    anchors = CounterMetricFamily("scanseal_ledger_anchors", "Roots anchored by this gateway")
    anchors.add_metric([], status.anchors)
    yield anchors
    failures = CounterMetricFamily(
        "scanseal_ledger_transaction_failures",
        "Transactions refused, reverted or unanswered since the gateway started",
    )
    failures.add_metric([], status.transaction_failures)
    yield failures


def _replication_families(store: ReplicatedStore) -> Iterator[Metric]:
    lag = store.lag()
    yield _gauge("scanseal_store_replication_queued",
                 "Objects held locally that fewer than min_replicas nodes confirm",
                 lag.queued)  # fmt: skip
    yield _gauge("scanseal_store_replication_lag_seconds",
                 "How long the oldest queued object has waited (0: none waits)",
                 lag.oldest_seconds or 0.0)  # fmt: skip
    failing = GaugeMetricFamily(
        "scanseal_store_replication_failing_objects", "Queued objects a node failed to take",
        labels=["node"],
    )  # fmt: skip
    for node in store.nodes:
        count = next((n.failing_objects for n in lag.nodes if n.node == node.url), 0)
        failing.add_metric([node.url], count)
    yield failing


def _agent_families(totals: Mapping[str, int], records: Counts | None) -> Iterator[Metric]:
    for outcome in ("forwarded", "failed", "held", "deferred"):
        family = CounterMetricFamily(
            f"scanseal_agent_{outcome}", f"Records the forwarding agent {outcome} (all passes)"
        )
        family.add_metric([], totals.get(outcome, 0))
        yield family
    if records is not None:
        held = GaugeMetricFamily(
            "scanseal_agent_records", "Records in the agent's state, by status", labels=["status"]
        )
        for status, count in sorted(records().items()):
            held.add_metric([status], count)
        yield held


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
