"""The gateway's REST API (FastAPI): thin handlers over :class:`~scanseal.service.gateway.Gateway`.

Handlers read the raw body, hand the work to a thread (the ledger and the store block), and map
every :class:`~scanseal.errors.ScanSealError` to its HTTP status with a JSON body
``{"error": class name, "reason": one line}``. docs/PROTOCOL.md describes each route; the OpenAPI
schema is served at ``/openapi.json``.

Fetch, the route that takes the load, is answered by a thin ASGI front before FastAPI's
middleware and routing (:class:`_FetchFront`, docs/PROTOCOL.md §9.5); its answers are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scanseal import __version__
from scanseal._disk import disk_error
from scanseal._sqlite import database_error
from scanseal.errors import InvalidInput, ScanSealError, StorageUnavailable
from scanseal.ledger import Reason
from scanseal.protocol import wire
from scanseal.protocol.signed import REQUEST_HEADER, SIGNATURE_HEADER
from scanseal.service.gateway import Gateway

T = TypeVar("T")
MAX_BODY: Final = 512 * 1024 * 1024
MAX_JSON_BODY: Final = 1024 * 1024
"""Grant and revocation bodies: a grant object is a few KiB (one stanza)."""
MAX_HEAD: Final = 64 * 1024
"""Request line and headers together; a signed request's two headers take under 1 KiB."""
_LINGER: Final = 2.0
"""Seconds a refused connection keeps draining before it is closed: closing with unread bytes
would reset it, and the client would lose the answer."""
_LOG: Final = logging.getLogger("scanseal.gateway")
_FETCH_PATH: Final = re.compile(r"/v1/records/([^/]+)")
_FETCH_THREADS: Final = 2
"""Threads answering fetches. A fetch holds the GIL for most of its work, so more threads only
add contention: with anyio's default of 40 (and still with 4) the event loop waited for the GIL
behind them and new connections' TLS handshakes fell seconds behind. Two keep one thread working
while the other waits for its nonce's commit (bench/gateway_load.py, docs/PROTOCOL.md §9.5)."""
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

        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

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


class _Fetcher:
    """Answers a signed fetch: Gateway.fetch on a small pool of threads, errors as JSON bodies."""

    def __init__(self, gateway: Gateway, metrics: _Metrics) -> None:
        self._gateway = gateway
        self._metrics = metrics
        self.pool = ThreadPoolExecutor(_FETCH_THREADS, thread_name_prefix="fetch")

    async def answer(self, record: str, headers: dict[str, str | None]) -> tuple[int, str, bytes]:
        """Status, media type and body of the answer to a fetch of ``record``."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            bundle = await loop.run_in_executor(
                self.pool, _mapped, self._gateway.fetch, record, headers
            )
        except ScanSealError as error:
            self._metrics.answered("fetch", type(error).__name__, started)
            return error.http_status, "application/json", _error_body(error)
        except Exception as error:  # a defect: still one JSON line, never a bare 500
            self._metrics.answered("fetch", _INTERNAL, started)
            return 500, "application/json", _internal_error_body(error)
        self._metrics.answered("fetch", "ok", started)
        return 200, wire.MEDIA_TYPE, bundle


class _FetchFront:
    """ASGI front: ``GET /v1/records/{record}`` straight to :class:`_Fetcher`, the rest to FastAPI.

    Under load, FastAPI's middleware stack, parameter solving and anyio's thread hand-off cost as
    much CPU as the fetch itself. The FastAPI route stays (the OpenAPI schema, and any request
    this front does not take) and answers through the same :class:`_Fetcher`. Middleware added
    to the FastAPI application does not see the fetches this front answers.
    """

    def __init__(self, app: FastAPI, fetcher: _Fetcher) -> None:
        self._app = app
        self._fetcher = fetcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _FETCH_PATH.fullmatch(scope["path"])
        if match is None:
            await self._app(scope, receive, send)
            return
        status, media, body = await self._fetcher.answer(match.group(1), _signed_headers(scope))
        headers = [(b"content-type", media.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with :data:`MAX_HEAD` enforced as the bytes arrive.

    httptools itself has no bound: it buffers a header however long it grows (by repeated
    concatenation) before handing it over. Bytes are fed to the parser only while they fit in
    what is left of the bound; a head that has not ended by then is answered with 431 and the
    connection closed once the client had time to read that. (Bytes of a pipelined request that
    arrive in the same read as the end of the previous one are not counted, so a head can
    exceed the bound by one read at most.)
    """

    _head = 0
    _in_head = True
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._in_head:
            super().data_received(data)
            return
        room = MAX_HEAD - self._head
        self._head += min(len(data), room)
        super().data_received(data[:room])
        if self._in_head and len(data) > room:
            self._refuse()
        elif len(data) > room:
            super().data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head = True, 0
        super().on_message_complete()

    def _refuse(self) -> None:
        self._refused = True
        body = _error_body(InvalidInput(f"request line and headers exceed {MAX_HEAD} bytes"))
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        asyncio.get_running_loop().call_later(_LINGER, self.transport.close)


def create_app(gateway: Gateway, dicom_receiver: Any = None) -> ASGIApp:
    """The ASGI application for one gateway; the lifespan anchors batched logs periodically.

    With a ``dicom_receiver`` (:class:`scanseal.dicom.scp.Receiver`) STOW-RS is mounted too.
    """
    metrics = _Metrics()
    gateway.on_denied = metrics.denial
    fetcher = _Fetcher(gateway, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(gateway))
        try:
            yield
        finally:
            ticker.cancel()
            fetcher.pool.shutdown(wait=True)

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
            return await run_in_threadpool(_mapped, work)
        except ScanSealError as error:
            outcome = type(error).__name__
            raise
        finally:
            metrics.answered(action, outcome, started)

    @app.exception_handler(ScanSealError)
    async def _refused(_request: Request, error: Exception) -> Response:
        assert isinstance(error, ScanSealError)
        return Response(_error_body(error), error.http_status, media_type="application/json")

    @app.exception_handler(Exception)
    async def _defect(_request: Request, error: Exception) -> Response:
        """Last resort: whatever a route failed with, the answer is one JSON line."""
        return Response(_internal_error_body(error), 500, media_type="application/json")

    @app.get("/v1/health", summary="Gateway identity, chain and contract (the signing domain)")
    async def health() -> Response:
        info = gateway.health()  # "starting" (HTTP 503) until the warm-up is done
        code = 200 if info["status"] == "ok" else 503
        return Response(json.dumps(info).encode(), code, media_type="application/json")

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
        status, media, body = await fetcher.answer(record, _signed(request))
        return Response(body, status_code=status, media_type=media)

    @app.post(
        "/v1/records/{record}/grants",
        summary="Publish the owner's signed grant (a re-wrapped header) and grant on chain",
        openapi_extra={**_SIGNED, "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object"}}}}},
    )  # fmt: skip
    async def grant(record: str, request: Request) -> dict[str, Any]:
        body = await _body(request, MAX_JSON_BODY)
        return await run("grant", lambda: gateway.grant(record, _signed(request), body))

    @app.post(
        "/v1/records/{record}/revocations",
        summary="Revoke a grantee's access (owner only); stops future releases",
        openapi_extra={**_SIGNED, "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "grantee": {"type": "string"}}}}}}},
    )  # fmt: skip
    async def revoke(record: str, request: Request) -> dict[str, Any]:
        body = await _body(request, MAX_JSON_BODY)
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
    return _FetchFront(app, fetcher)


def _mapped(work: Callable[..., T], *args: Any) -> T:
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
    _LOG.warning("local storage failed: %s", unavailable.reason)
    raise unavailable from None


def _signed(request: Request) -> dict[str, str | None]:
    return {
        "request": request.headers.get(REQUEST_HEADER),
        "signature": request.headers.get(SIGNATURE_HEADER),
    }


def _signed_headers(scope: Scope) -> dict[str, str | None]:
    """The signed-request headers of a raw ASGI request (first of each, as Starlette reads)."""
    found: dict[str, str | None] = {"request": None, "signature": None}
    for name, value in scope["headers"]:
        key = _SIGNED_NAMES.get(name)
        if key is not None and found[key] is None:
            found[key] = value.decode("latin-1")
    return found


_SIGNED_NAMES: Final = {
    REQUEST_HEADER.lower().encode(): "request",
    SIGNATURE_HEADER.lower().encode(): "signature",
}


def _error_body(error: ScanSealError) -> bytes:
    """The JSON body of a refusal, byte for byte what Starlette's JSONResponse would send.

    A reason may quote outside input holding a lone surrogate, which UTF-8 cannot carry: it is
    spelled as the text ``\\udcbe`` (not a JSON escape, which a strict reader would refuse)
    rather than failing the answer.
    """
    reason = error.reason.encode("utf-8", "backslashreplace").decode("utf-8")
    answer = {"error": type(error).__name__, "reason": reason}
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_INTERNAL: Final = "InternalError"


def _internal_error_body(error: Exception) -> bytes:
    """The answer to a defect: the class of the exception only; the traceback goes to the log."""
    _LOG.error("unexpected %s answering a request", type(error).__name__, exc_info=error)
    reason = f"internal error ({type(error).__name__}); the gateway's log has the details"
    return json.dumps({"error": _INTERNAL, "reason": reason}).encode("utf-8")


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
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


async def _tick(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(gateway.config.tick_seconds)
        with contextlib.suppress(ScanSealError):
            await run_in_threadpool(_mapped, gateway.tick)  # a failed anchor retries next tick
