"""A man in the middle on 127.0.0.1: an asyncio HTTP/1.1 proxy that alters bodies in flight.

Each client connection carries one request. The proxy reads it whole, may alter the request
body, forwards it to the gateway with ``Connection: close``, reads the whole response, may alter
the response body, fixes ``Content-Length`` (as a real attacker would, so the client sees a
well-formed message), and hands it back. What to alter is set per trial in ``plan``.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

Region = Callable[[bytes], tuple[int, int]]
"""Given a body, the [start, end) range that a mutation may touch."""


@dataclass
class Plan:
    direction: str  # "request" or "response"
    region: Region
    op: str  # "flip", "insert" or "delete"
    rng: random.Random
    applied: bool = False

    def mutate(self, body: bytes) -> bytes:
        start, end = self.region(body)
        if end <= start:
            return body
        pos = self.rng.randrange(start, end)
        self.applied = True
        if self.op == "flip":
            bit = 1 << self.rng.randrange(8)
            return body[:pos] + bytes([body[pos] ^ bit]) + body[pos + 1 :]
        if self.op == "insert":
            extra = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 5)))
            return body[:pos] + extra + body[pos:]
        count = min(self.rng.randrange(1, 5), end - pos)
        return body[:pos] + body[pos + count :]


class MitmProxy:
    """Runs its own event loop in a thread; ``url`` is what clients should talk to."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.plan: Plan | None = None
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MitmProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head, body = await _read_message(reader, request=True)
            plan = self.plan
            if plan is not None and plan.direction == "request":
                body = plan.mutate(body)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write(_with_length(_closing(head), len(body)) + body)
            await up_writer.drain()
            head, answer = await _read_message(up_reader, request=False)
            up_writer.close()
            if plan is not None and plan.direction == "response":
                answer = plan.mutate(answer)
            writer.write(_with_length(head, len(answer)) + answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _read_message(reader: asyncio.StreamReader, *, request: bool) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = _content_length(head)
    if length is not None:
        return head, await reader.readexactly(length)
    if request:
        return head, b""
    return head, await reader.read()  # until the gateway closes (Connection: close)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def _closing(head: bytes) -> bytes:
    lines = [
        line
        for line in head.rstrip(b"\r\n").split(b"\r\n")
        if not line.lower().startswith(b"connection:")
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _with_length(head: bytes, length: int) -> bytes:
    lines = [
        line
        for line in head.rstrip(b"\r\n").split(b"\r\n")
        if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
    ]
    if length or not lines[0].startswith((b"GET", b"HEAD")):
        lines.append(b"Content-Length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"
