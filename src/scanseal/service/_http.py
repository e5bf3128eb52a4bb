"""What every route of the gateway shares: body limits, error bodies, local-fault mapping and the
Prometheus metrics.

Every :class:`~scanseal.errors.ScanSealError` is answered with its HTTP status and a JSON body
``{"error": class name, "reason": one line}``; anything else is a defect, answered with one JSON
line too (the traceback goes to the log).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import ClientDisconnect, Request

from scanseal._disk import disk_error
from scanseal._sqlite import database_error
from scanseal.errors import InvalidInput, ScanSealError, StorageUnavailable
from scanseal.ledger import Reason

T = TypeVar("T")
MAX_BODY: Final = 512 * 1024 * 1024
MAX_JSON_BODY: Final = 1024 * 1024
"""Grant and revocation bodies: a grant object is a few KiB (one stanza)."""
LOG: Final = logging.getLogger("scanseal.gateway")
INTERNAL: Final = "InternalError"
_LOGGED: Final = "_scanseal_logged"


class Metrics:
    """The gateway's Prometheus counters: answers by action and outcome, refused reads by
    ledger reason, answer times, and the DICOM instances received (the dependencies' state is
    read at each scrape: ``scanseal.service.health.DependencyCollector``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "scanseal_requests", "Gateway requests by action and outcome",
            ["action", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.denied = Counter(
            "scanseal_denied", "Refused record reads by ledger reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "scanseal_request_seconds", "Time to answer, by action", ["action"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip

        self.instances = Counter(
            "scanseal_scp_instances", "DICOM instances answered, by way in and status (hex)",
            ["via", "status"], registry=self.registry,
        )  # fmt: skip
        self.instance_seconds = Histogram(
            "scanseal_scp_instance_seconds", "Time to screen, seal and register an instance",
            ["via"], registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )  # fmt: skip
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def instance(self, via: str, status: int, seconds: float) -> None:
        """Count one DICOM instance (C-STORE or STOW-RS) answered with ``status``."""
        self.instances.labels(via, f"{status:04X}").inc()
        self.instance_seconds.labels(via).observe(seconds)

    def denial(self, _action: str, reason: int) -> None:
        self.denied.labels(Reason.label(reason)).inc()

    def answered(self, action: str, outcome: str, started: float) -> None:
        """Count one answer and its time since ``started`` (perf_counter). Each label pair's
        children are looked up once: ``labels()`` cost more than the count on the fetch path."""
        children = self._children.get((action, outcome))
        if children is None:
            children = (self.requests.labels(action, outcome), self.latency.labels(action))
            self._children[(action, outcome)] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


def mapped(work: Callable[..., T], *args: Any) -> T:
    """Run ``work``; a failure of the gateway's own disk or SQLite files (full, read-only,
    unreadable) becomes StorageUnavailable (503) with one line naming the file where it is
    known, as a node's failure would. The files are the gateway's own, so whatever the fault,
    the request was fine and the service is not (``scanseal._disk``'s ``store`` mapping)."""
    try:
        return work(*args)
    except OSError as error:
        unavailable = disk_error(error, store=True)
    except sqlite3.Error as error:
        named = database_error(error)
        unavailable = StorageUnavailable(named.reason if named is not None else str(error))
    LOG.warning("local storage failed: %s", unavailable.reason)
    raise unavailable from None


def error_body(error: ScanSealError) -> bytes:
    """The JSON body of a refusal, byte for byte what Starlette's JSONResponse would send.

    A reason may quote outside input holding a lone surrogate, which UTF-8 cannot carry: it is
    spelled as the text ``\\udcbe`` (not a JSON escape, which a strict reader would refuse)
    rather than failing the answer.
    """
    reason = error.reason.encode("utf-8", "backslashreplace").decode("utf-8")
    answer = {"error": type(error).__name__, "reason": reason}
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def internal_error_body(error: Exception) -> bytes:
    """The answer to a defect: the class of the exception only; the traceback goes to the log
    (once: the error is marked as logged, see :func:`logged`)."""
    LOG.error("unexpected %s answering a request", type(error).__name__, exc_info=error)
    with contextlib.suppress(AttributeError):  # a class with __slots__ cannot be marked
        setattr(error, _LOGGED, True)
    reason = f"internal error ({type(error).__name__}); the gateway's log has the details"
    return json.dumps({"error": INTERNAL, "reason": reason}).encode("utf-8")


def logged(error: BaseException) -> bool:
    """Whether ``error`` was answered as a defect and logged with its traceback already.

    Starlette's last-resort handler answers with :func:`internal_error_body`, then raises the
    exception again for the server, and uvicorn would log the same traceback a second time."""
    return bool(getattr(error, _LOGGED, False))


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes: from its
    Content-Length, or while a chunked body streams in (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise _too_large(limit)
            parts.append(part)
    except ClientDisconnect:  # nobody is left to answer; not a defect of the gateway
        raise InvalidInput("the client went away before its request body ended") from None
    return b"".join(parts)


def _too_large(limit: int) -> ScanSealError:
    return InvalidInput(f"request body exceeds {limit} bytes")
