"""The plain-HTTPS baseline server: PUT stores a body in memory, GET returns it. Nothing else.

    python bench/evaluation/_plain_server.py PORT CERT KEY

The same server stack as the gateway (uvicorn, the same TLS certificate), so the difference
between it and a gateway is what ScanSeal adds: signatures, nonces, the ledger, the store.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

Scope = dict[str, Any]


def app_factory() -> Any:
    stored: dict[str, bytes] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "PUT":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            stored[path] = b"".join(chunks)
            status, body = 200, b"stored"
        elif path == "/health":
            status, body = 200, b"ok"
        elif path in stored:
            status, body = 200, stored[path]
        else:
            status, body = 404, b"not found"
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(app_factory(), host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key,
                log_level="warning", access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
