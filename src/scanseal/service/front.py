"""The fast path of the gateway: signed fetches straight to the gateway, and a bounded HTTP head.

A fetch is the route that takes the load. :class:`FetchFront` answers ``GET /v1/records/{record}``
before FastAPI's middleware and routing, through :class:`Fetcher` — the same answers as the
FastAPI route, which stays for the OpenAPI schema and is kept equal to it by
tests/service/test_fetch_front.py (docs/PROTOCOL.md §9.5). :class:`BoundedHttp` bounds the
request head as its bytes arrive.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr

from scanseal.errors import InvalidInput, ScanSealError
from scanseal.protocol import REQUEST_HEADER, SIGNATURE_HEADER, wire
from scanseal.service._access import ROUTE_KEY
from scanseal.service._http import INTERNAL, Metrics, error_body, internal_error_body, mapped
from scanseal.service.gateway import Gateway
from scanseal.service.logs import SourceLogger

MAX_HEAD: Final = 64 * 1024
"""Request line and headers together; a signed request's two headers take under 1 KiB."""
_LINGER: Final = 2.0
"""Seconds a refused connection keeps draining before it is closed: closing with unread bytes
would reset it, and the client would lose the answer."""
_FETCH_PATH: Final = re.compile(r"/v1/records/([^/]+)")
FETCH_ROUTE: Final = "/v1/records/{record}"
_FETCH_THREADS: Final = 2
"""Threads answering fetches. A fetch holds the GIL for most of its work, so more threads only
add contention (the event loop, waiting for the GIL behind them, falls behind on new
connections' TLS handshakes); two keep one thread working while the other waits for its nonce's
commit. docs/PROTOCOL.md §9.5 has the measurements."""


class Fetcher:
    """Answers a signed fetch: Gateway.fetch on a small pool of threads, errors as JSON bodies."""

    def __init__(self, gateway: Gateway, metrics: Metrics) -> None:
        self._gateway = gateway
        self._metrics = metrics
        self.pool = ThreadPoolExecutor(_FETCH_THREADS, thread_name_prefix="fetch")

    async def answer(self, record: str, headers: dict[str, str | None]) -> tuple[int, str, bytes]:
        """Status, media type and body of the answer to a fetch of ``record``."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the access log's slot for the requester
        try:
            bundle = await loop.run_in_executor(
                self.pool, context.run, mapped, self._gateway.fetch, record, headers
            )
        except ScanSealError as error:
            self._metrics.answered("fetch", type(error).__name__, started)
            return error.http_status, "application/json", error_body(error)
        except Exception as error:  # a defect: still one JSON line, never a bare 500
            self._metrics.answered("fetch", INTERNAL, started)
            return 500, "application/json", internal_error_body(error)
        self._metrics.answered("fetch", "ok", started)
        return 200, wire.MEDIA_TYPE, bundle


class FetchFront:
    """ASGI front: ``GET /v1/records/{record}`` straight to :class:`Fetcher`, the rest to FastAPI.

    Under load, FastAPI's middleware stack, parameter solving and anyio's thread hand-off cost as
    much CPU as the fetch itself. The FastAPI route stays (the OpenAPI schema, and any request
    this front does not take) and answers through the same :class:`Fetcher`. Middleware added
    to the FastAPI application does not see the fetches this front answers.
    """

    def __init__(self, app: FastAPI, fetcher: Fetcher) -> None:
        self._app = app
        self._fetcher = fetcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _FETCH_PATH.fullmatch(scope["path"])
        if match is None:
            await self._app(scope, receive, send)
            return
        scope[ROUTE_KEY] = FETCH_ROUTE
        status, media, body = await self._fetcher.answer(match.group(1), signed_headers_of(scope))
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

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's logger for this connection, with the peer's address as the ``source``
        field: its "Invalid HTTP request received" then says who sent it."""
        peer = get_remote_addr(transport)
        self.logger = SourceLogger(self.logger, f"{peer[0]}:{peer[1]}" if peer else None)  # type: ignore[assignment]
        super().connection_made(transport)

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
        body = error_body(InvalidInput(f"request line and headers exceed {MAX_HEAD} bytes"))
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        asyncio.get_running_loop().call_later(_LINGER, self.transport.close)


def signed_headers_of(scope: Scope) -> dict[str, str | None]:
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
