"""A client for the kubo RPC API (``/api/v0``), as served by kubo and by js-ipfs.

Only the calls ScanSeal needs: ``add`` (CIDv1, raw leaves, 256 KiB chunks, pinned), ``cat``
with offset and a server-side timeout, ``block/get``, ``pin/add``, ``pin/rm``,
``pin/ls``, ``version``, and ``dag/import``/``dag/export`` for CAR interchange. Uploads stream
(chunked multipart) so memory stays bounded. Every failure to talk to the node becomes
:class:`~scanseal.errors.StorageUnavailable` naming the node (:class:`NodeSilent` when it stayed
silent past the timeout: connected, but not answering); the node is never trusted for content,
callers verify what it returns.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

from scanseal._json import parse_object
from scanseal.errors import InvalidInput, StorageUnavailable
from scanseal.storage._builder import CHUNK_SIZE

_ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": f"size-{CHUNK_SIZE}",
    "hash": "sha2-256",
    "pin": "true",
    "cid-base": "base32",
}
_MAX_SMALL_REPLY = 4 * 1024 * 1024 + 1024


class KuboNode:
    """One IPFS node's RPC endpoint, e.g. ``http://127.0.0.1:5001``."""

    def __init__(self, url: str, *, timeout: float = 30.0, connect_timeout: float = 3.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidInput(f"node URL must be http://host:port, got {url!r}")
        self.url = f"http://{parts.hostname}:{parts.port or 5001}"
        self._host = parts.hostname
        self._port = parts.port or 5001
        self._base = parts.path.rstrip("/") + "/api/v0"
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"KuboNode({self.url!r})"

    def version(self) -> str:
        reply = _reply(self._small("version", {}))
        return str(reply.get("Version", "?"))

    def add(self, chunks: Iterable[bytes]) -> str:
        """Upload a file as a stream; return the CID (base32) the node computed."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:
            yield head
            yield from chunks
            yield tail

        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        with self._call("add", _ADD_PARAMS, body(), headers) as response:
            lines = [line for line in response.read().splitlines() if line.strip()]
        if not lines:
            raise StorageUnavailable(f"{self.url}: add returned nothing")
        return str(_reply(lines[-1])["Hash"])

    def open_cat(self, cid: str, offset: int = 0) -> NodeStream:
        """Stream a file's content from ``offset``; the node gives up after the timeout."""
        params = {"arg": cid, "offset": str(offset), "timeout": f"{self.timeout:g}s"}
        return NodeStream(*self._open("cat", params))

    def block_get(self, cid: str) -> bytes:
        return self._small("block/get", {"arg": cid, "timeout": f"{self.timeout:g}s"})

    def pin_add(self, cid: str) -> None:
        self._small("pin/add", {"arg": cid, "timeout": f"{self.timeout:g}s"})

    def pin_rm(self, cid: str) -> None:
        self._small("pin/rm", {"arg": cid})

    def is_pinned(self, cid: str) -> bool:
        """True when the node pins ``cid`` recursively; a node that is down raises."""
        try:
            reply = _reply(
                self._small("pin/ls", {"arg": cid, "type": "recursive", "cid-base": "base32"})
            )
        except _NodeSaid as said:
            if "not pinned" in said.reason:
                return False
            raise
        return bool(reply.get("Keys"))

    def dag_import(self, car: Iterable[bytes]) -> None:
        """Import a CAR stream (the node pins its roots)."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.car"\r\n'
            "Content-Type: application/vnd.ipld.car\r\n\r\n"
        ).encode()

        def body() -> Iterator[bytes]:
            yield head
            yield from car
            yield f"\r\n--{boundary}--\r\n".encode()

        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        with self._call("dag/import", {}, body(), headers) as response:
            response.read()

    @contextmanager
    def dag_export(self, cid: str) -> Iterator[http.client.HTTPResponse]:
        with self._call("dag/export", {"arg": cid, "timeout": f"{self.timeout:g}s"}) as response:
            yield response

    def _small(self, command: str, params: dict[str, str]) -> bytes:
        with self._call(command, params) as response:
            data = response.read(_MAX_SMALL_REPLY)
        return data

    @contextmanager
    def _call(
        self,
        command: str,
        params: dict[str, str],
        body: Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[http.client.HTTPResponse]:
        connection, response = self._open(command, params, body, headers)
        try:
            yield response
        finally:
            connection.close()

    def _open(
        self,
        command: str,
        params: dict[str, str],
        body: Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        path = f"{self._base}/{command}?{urlencode(params)}"
        connection = http.client.HTTPConnection(
            self._host, self._port, timeout=self.connect_timeout
        )
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(self.timeout)
            connection.request(
                "POST", path, body=body, headers=headers or {}, encode_chunked=body is not None
            )
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise _unavailable(f"{self.url}: {command} failed", error) from None
        if response.status != 200:
            message = _message(response)
            connection.close()
            raise _NodeSaid(f"{self.url}: {command}: {message}")
        return connection, response


class NodeStream:
    """An open streaming reply; ``read`` turns transport failures into StorageUnavailable."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        self._connection = connection
        self._response = response

    def read(self, size: int) -> bytes:
        """Read up to ``size`` bytes, fewer only at the end of the reply."""
        try:
            return self._response.read(size)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise _unavailable("reply broken", error) from None

    def close(self) -> None:
        self._connection.close()


class _NodeSaid(StorageUnavailable):
    """The node answered with an error (as opposed to not answering)."""


class NodeSilent(StorageUnavailable):
    """The node accepted the connection but said nothing within the timeout (stopped, hung or
    overloaded): asking again would only wait another timeout."""


def _unavailable(context: str, error: BaseException) -> StorageUnavailable:
    kind = NodeSilent if isinstance(error, TimeoutError) else StorageUnavailable
    return kind(f"{context}: {_describe(error)}")


def _message(response: http.client.HTTPResponse) -> str:
    raw = response.read(4096)
    try:
        return str(_reply(raw)["Message"])
    except (StorageUnavailable, KeyError, TypeError):
        return f"HTTP {response.status} {raw[:200]!r}"


def _reply(raw: bytes) -> dict[str, Any]:
    """A node's JSON answer, bounded and strict (scanseal._json); StorageUnavailable if not."""
    try:
        return parse_object(raw, "IPFS node reply")
    except InvalidInput as error:
        raise StorageUnavailable(error.reason) from None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (node down?)"
    return str(error) or type(error).__name__
