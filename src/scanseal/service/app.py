"""The gateway's REST API (FastAPI): thin handlers over :class:`~scanseal.service.gateway.Gateway`.

Handlers read the raw body, hand the work to a thread (the ledger and the store block), and map
every :class:`~scanseal.errors.ScanSealError` to its HTTP status with a JSON body
``{"error": class name, "reason": one line}``. docs/PROTOCOL.md describes each route; the OpenAPI
schema is served at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool

from scanseal import __version__
from scanseal.errors import InvalidInput, ScanSealError
from scanseal.ledger import Reason
from scanseal.service import wire
from scanseal.service.gateway import Gateway
from scanseal.service.signed import REQUEST_HEADER, SIGNATURE_HEADER

T = TypeVar("T")
MAX_BODY: Final = 512 * 1024 * 1024
_SIGNED: Final = {
    "parameters": [
        {"name": REQUEST_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
         "description": "base64url of the canonical JSON request (docs/PROTOCOL.md §2)"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "EIP-712 signature, 0x + 130 hex"},
    ],
}  # fmt: skip
_BUNDLE_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {wire.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}
_BUNDLE_REPLY: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {wire.MEDIA_TYPE: {}}, "description": "bundle: manifest, grant, envelope"}
}


class _Metrics:
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

    def denial(self, _action: str, reason: int) -> None:
        self.denied.labels(Reason.label(reason)).inc()


def create_app(gateway: Gateway, dicom_receiver: Any = None) -> FastAPI:
    """The ASGI application for one gateway; the lifespan anchors batched logs periodically.

    With a ``dicom_receiver`` (:class:`scanseal.dicom.scp.Receiver`) STOW-RS is mounted too.
    """
    metrics = _Metrics()
    gateway.on_denied = metrics.denial

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(gateway))
        try:
            yield
        finally:
            ticker.cancel()

    app = FastAPI(
        title="ScanSeal gateway",
        version=__version__,
        description="Upload, fetch, share and audit sealed medical images (docs/PROTOCOL.md).",
        lifespan=lifespan,
    )

    async def run(action: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await run_in_threadpool(work)
        except ScanSealError as error:
            outcome = type(error).__name__
            raise
        finally:
            metrics.requests.labels(action, outcome).inc()
            metrics.latency.labels(action).observe(time.perf_counter() - started)

    @app.exception_handler(ScanSealError)
    async def _refused(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ScanSealError)
        return JSONResponse(
            {"error": type(error).__name__, "reason": error.reason}, status_code=error.http_status
        )

    @app.get("/v1/health", summary="Gateway identity, chain and contract (the signing domain)")
    async def health() -> dict[str, Any]:
        return gateway.health()

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/records", summary="Upload a sealed envelope and its manifest; register the record",
        openapi_extra={**_SIGNED, **_BUNDLE_BODY},
    )  # fmt: skip
    async def upload(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run("upload", lambda: gateway.upload(_signed(request), body))

    @app.get(
        "/v1/records/{record}",
        summary="Fetch a record by a signed request (single-use nonce; logged on the ledger)",
        response_class=Response, responses=_BUNDLE_REPLY, openapi_extra=_SIGNED,
    )  # fmt: skip
    async def fetch(record: str, request: Request) -> Response:
        bundle = await run("fetch", lambda: gateway.fetch(record, _signed(request)))
        return Response(bundle, media_type=wire.MEDIA_TYPE)

    @app.post(
        "/v1/records/{record}/grants",
        summary="Publish the owner's signed grant (a re-wrapped header) and grant on chain",
        openapi_extra={**_SIGNED, "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object"}}}}},
    )  # fmt: skip
    async def grant(record: str, request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run("grant", lambda: gateway.grant(record, _signed(request), body))

    @app.post(
        "/v1/records/{record}/revocations",
        summary="Revoke a grantee's access (owner only); stops future releases",
        openapi_extra={**_SIGNED, "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "grantee": {"type": "string"}}}}}}},
    )  # fmt: skip
    async def revoke(record: str, request: Request) -> dict[str, Any]:
        body = await _body(request)
        return await run("revoke", lambda: gateway.revoke(record, _signed(request), body))

    @app.get(
        "/v1/records/{record}/audit",
        summary="The record's audit trail (owner, grantees, auditors)", openapi_extra=_SIGNED,
    )  # fmt: skip
    async def audit(record: str, request: Request) -> list[dict[str, Any]]:
        return await run("audit", lambda: gateway.audit(record, _signed(request)))

    @app.get(
        "/v1/inbox", summary="Records granted to the caller after a cursor (the signed record)",
        openapi_extra=_SIGNED,
    )  # fmt: skip
    async def inbox(request: Request, after: int = 0) -> dict[str, Any]:
        return await run("inbox", lambda: gateway.inbox_for(after, _signed(request)))

    @app.get("/v1/records/{record}/verify", summary="Public checks against manifest and ledger")
    async def verify(record: str) -> dict[str, Any]:
        return await run("verify", lambda: gateway.verify(record))

    if dicom_receiver is not None:
        from scanseal.service import stow

        stow.add_routes(app, dicom_receiver, run, _body)
    return app


def _signed(request: Request) -> dict[str, str | None]:
    return {
        "request": request.headers.get(REQUEST_HEADER),
        "signature": request.headers.get(SIGNATURE_HEADER),
    }


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _too_large()
    return body


def _too_large() -> ScanSealError:
    return InvalidInput(f"request body exceeds {MAX_BODY} bytes")


async def _tick(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(gateway.config.tick_seconds)
        with contextlib.suppress(ScanSealError):
            await run_in_threadpool(gateway.tick)
