"""The embedded chain served read-only over JSON-RPC, so external tools (web3.py, ethers, cast)
can read it (``scanseal ledger rpc``).

The server holds a replica of the embedded chain rebuilt from its journal
(``EmbeddedChain(read_only=True)``): it never writes the journal and takes no lock, so it runs
beside ``scanseal serve``, and before each request it replays what ``serve`` journalled since,
so it answers with the same blocks, hashes and events. Only the read methods are answered;
every method that would sign, send or change the chain is refused with a JSON-RPC error.
Requests are handled one at a time: py-evm is not made for concurrent use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from scanseal import __version__
from scanseal.errors import InvalidInput, LedgerUnavailable
from scanseal.ledger._chain import FUNDER_ADDRESS, EmbeddedChain
from scanseal.ledger.config import LedgerConfig

READ_METHODS = frozenset(
    {
        "eth_chainId", "eth_blockNumber", "eth_getBlockByNumber", "eth_getBlockByHash",
        "eth_getTransactionByHash", "eth_getTransactionReceipt", "eth_getLogs", "eth_call",
        "eth_getCode", "eth_getBalance", "eth_getTransactionCount", "eth_gasPrice",
        "eth_syncing", "net_version", "net_listening", "web3_clientVersion",
    }
)  # fmt: skip
"""What the replica answers; everything else is refused or unknown."""

WRITE_PREFIXES = ("personal_", "anvil_", "evm_", "hardhat_", "debug_", "miner_", "admin_")
WRITE_METHODS = frozenset(
    {"eth_sendRawTransaction", "eth_sendTransaction", "eth_sign", "eth_signTransaction",
     "eth_signTypedData", "eth_signTypedData_v4", "eth_newFilter", "eth_newBlockFilter",
     "eth_uninstallFilter", "eth_submitWork", "eth_submitHashrate"}
)  # fmt: skip
READ_ONLY_ERROR = -32003
"""JSON-RPC error code of a refused write (EIP-1474's "transaction rejected")."""
_MAX_BODY = 1 << 20
_log = logging.getLogger("scanseal.ledger")


class ReadOnlyRpc:
    """Answers JSON-RPC request objects from a read-only replica of the embedded chain."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain

    def answer(self, request: Any) -> dict[str, Any]:
        """The response object for one request object (errors as JSON-RPC errors)."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, -32600, "invalid request")
        ident, method = request.get("id"), request["method"]
        params = request.get("params", [])
        if not isinstance(params, list):
            return _error(ident, -32602, "params must be a list")
        if method in WRITE_METHODS or method.startswith(WRITE_PREFIXES):
            return _error(ident, READ_ONLY_ERROR, f"{method} refused: this chain is read-only")
        if method not in READ_METHODS:
            return _error(ident, -32601, f"method {method} not found")
        try:
            result = self._dispatch(method, params)
        except Exception as error:  # the read failed: one line, the server goes on
            detail = " ".join(str(error).split())[:300] or type(error).__name__
            return _error(ident, -32000, detail)
        return {"jsonrpc": "2.0", "id": ident, "result": result}

    def _dispatch(self, method: str, params: list[Any]) -> Any:
        self.chain.follow()
        if method == "web3_clientVersion":
            return f"scanseal/{__version__}/read-only-embedded-chain"
        if method == "net_version":
            return str(self.chain.chain_id)
        if method == "net_listening":
            return True
        if method == "eth_syncing":
            return False
        if method == "eth_getLogs" and params and isinstance(params[0], dict):
            params = [_numeric_range(params[0])]
        if method == "eth_call" and params and isinstance(params[0], dict):
            params = [{"from": FUNDER_ADDRESS, **params[0]}, *params[1:]]  # eth-tester needs one
        return wire(self.chain.w3.manager.request_blocking(method, params))  # type: ignore[arg-type]


def wire(value: Any, key: str = "") -> Any:
    """A web3 result in JSON-RPC wire form: quantities and bytes as 0x-hex."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if key == "logsBloom":
            return "0x" + value.to_bytes(256, "big").hex()
        return hex(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {("root" if k == "state_root" else k): wire(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return str(value)


def serve_rpc(config: LedgerConfig, port: int, ready: Callable[[int], None]) -> None:
    """Serve the configured embedded chain read-only on 127.0.0.1:``port`` (0: any free
    port) until interrupted; ``ready`` gets the port once it listens."""
    if config.backend != "embedded":
        raise InvalidInput(f"the configured chain is a JSON-RPC node already: {config.url}")
    chain = EmbeddedChain(Path(config.state_dir), config.timeout, read_only=True)
    try:
        _serve(ReadOnlyRpc(chain), port, ready)
    finally:
        chain.close()


def _serve(rpc: ReadOnlyRpc, port: int, ready: Callable[[int], None]) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= _MAX_BODY:
                self._send(_error(None, -32600, "request body missing or too large"))
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._send(_error(None, -32700, "parse error"))
                return
            if isinstance(body, list):
                self._send([rpc.answer(item) for item in body] or _error(None, -32600, "empty"))
            else:
                self._send(rpc.answer(body))

        def _send(self, payload: Any) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("rpc: " + format, *args)

    try:
        server = HTTPServer(("127.0.0.1", port), Handler)
    except OSError as error:
        raise LedgerUnavailable(
            f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}"
        ) from None
    try:
        ready(int(server.server_address[1]))
        server.serve_forever()
    finally:
        server.server_close()


def _numeric_range(query: dict[str, Any]) -> dict[str, Any]:
    """eth-tester takes block numbers in a log filter as integers, not 0x-quantities."""
    out = dict(query)
    for name in ("fromBlock", "toBlock"):
        value = out.get(name)
        if isinstance(value, str) and value.startswith("0x"):
            out[name] = int(value, 16)
    return out


def _error(ident: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}
