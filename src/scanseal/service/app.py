"""The gateway's REST API (FastAPI): the routers of ``routes`` over one
:class:`~scanseal.service.gateway.Gateway`, behind the fast fetch front of ``front``.

Handlers read the raw body, hand the work to a thread (the ledger and the store block), and map
every :class:`~scanseal.errors.ScanSealError` to its HTTP status with a JSON body
``{"error": class name, "reason": one line}``. docs/PROTOCOL.md describes each route; the OpenAPI
schema is served at ``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from
packaged assets (``apidocs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from scanseal import __version__
from scanseal.errors import ScanSealError
from scanseal.service import audit_query, routes, studies
from scanseal.service._access import AccessLog
from scanseal.service._http import (
    MAX_BODY,
    Metrics,
    error_body,
    internal_error_body,
    mapped,
    read_body,
)
from scanseal.service.apidocs import mount_docs
from scanseal.service.front import MAX_HEAD, BoundedHttp, Fetcher, FetchFront
from scanseal.service.gateway import Gateway
from scanseal.service.health import DependencyCollector, Health, Watch

T = TypeVar("T")
Runner = Callable[[str, Callable[[], T]], Awaitable[T]]
"""Runs blocking work off the event loop, maps local disk faults and counts the answer."""
BodyReader = Callable[..., Awaitable[bytes]]
"""Reads a request body within a byte limit (``read_body``)."""
Mount = Callable[[FastAPI, Runner[Any], BodyReader], None]
"""Adds routes of another adapter (STOW-RS) to the app, with the app's runner and body reader."""

__all__ = [
    "MAX_BODY", "MAX_HEAD", "BodyReader", "BoundedHttp", "Metrics", "Mount", "Runner", "Watch",
    "create_app",
]  # fmt: skip


def create_app(
    gateway: Gateway,
    mounts: Sequence[Mount] = (),
    *,
    metrics: Metrics | None = None,
    watch: Watch | None = None,
) -> ASGIApp:
    """The ASGI application for one gateway; the lifespan anchors batched logs periodically.

    Each of ``mounts`` adds its routes (the server wiring mounts STOW-RS this way, so the
    service knows nothing of DICOM); ``watch`` adds what /v1/health and /metrics report
    beside the gateway's own dependencies, and ``metrics`` is where the SCP counts.
    """
    metrics = Metrics() if metrics is None else metrics
    watch = Watch() if watch is None else watch
    health = Health(gateway, watch.probes)
    metrics.registry.register(DependencyCollector(gateway, watch))
    gateway.on_denied = metrics.denial
    fetcher = Fetcher(gateway, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(gateway))
        try:
            yield
        finally:
            ticker.cancel()
            fetcher.pool.shutdown(wait=True)
            health.close()

    app = FastAPI(
        title="ScanSeal gateway",
        version=__version__,
        description="Upload, fetch, share and audit sealed medical images (docs/PROTOCOL.md).",
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets by mount_docs, never from a CDN
        redoc_url=None,
    )
    run = _runner(metrics)
    app.state.gateway, app.state.metrics, app.state.fetcher, app.state.run = (
        gateway, metrics, fetcher, run,
    )  # fmt: skip
    app.state.health = health
    _answer_errors(app)
    routers = (routes.operations, routes.records, routes.inbox, audit_query.router, studies.studies)
    for router in routers:
        app.include_router(router)
    for mount in mounts:
        mount(app, run, read_body)
    mount_docs(app)
    return AccessLog(FetchFront(app, fetcher))


def _runner(metrics: Metrics) -> Runner[Any]:
    async def run(action: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await run_in_threadpool(mapped, work)
        except ScanSealError as error:
            outcome = type(error).__name__
            raise
        finally:
            metrics.answered(action, outcome, started)

    return run


def _answer_errors(app: FastAPI) -> None:
    @app.exception_handler(ScanSealError)
    async def _refused(_request: Request, error: Exception) -> Response:
        assert isinstance(error, ScanSealError)
        return Response(error_body(error), error.http_status, media_type="application/json")

    @app.exception_handler(Exception)
    async def _defect(_request: Request, error: Exception) -> Response:
        """Last resort: whatever a route failed with, the answer is one JSON line."""
        return Response(internal_error_body(error), 500, media_type="application/json")


async def _tick(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(gateway.config.tick_seconds)
        with contextlib.suppress(ScanSealError):
            await run_in_threadpool(mapped, gateway.tick)  # a failed anchor retries next tick
