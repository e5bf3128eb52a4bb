"""What a JSON-RPC node can answer instead of a result, and what the ledger makes of it.

A relay on 127.0.0.1 stands between the ledger and a real anvil. While it passes requests on,
the ledger works as usual; switched, it answers every request itself with one of the ways a
node or a proxy in front of one goes wrong: a JSON-RPC error object, a reply with neither result
nor error, a result of the wrong type, an HTTP error page, or no answer at all (the connection
closed). Every ledger operation (a transaction, a view, a log query, the head) then raises
LedgerUnavailable with one line: the gateway's 503 and the CLI's exit 5, never a raw web3 or
``requests`` exception (an HTTP 500). Switched back, the same ledger goes on working.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scanseal.errors import LedgerUnavailable
from scanseal.ledger import Ledger

from .conftest import Cast, ConfigFactory, new_cid, populate

pytestmark = pytest.mark.integration

_ANSWERS: dict[str, Callable[[Any], bytes | None]] = {
    "error object": lambda rid: json.dumps(
        {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": "node is syncing"}}
    ).encode(),
    "neither result nor error": lambda rid: json.dumps({"jsonrpc": "2.0", "id": rid}).encode(),
    "result of the wrong type": lambda rid: json.dumps(
        {"jsonrpc": "2.0", "id": rid, "result": {"not": "a hex string"}}
    ).encode(),
    "not JSON": lambda _rid: b"<html>502 Bad Gateway</html>",
    "connection closed": lambda _rid: None,
}


class Relay:
    """Passes JSON-RPC POSTs on to ``upstream`` until ``answer`` names one of _ANSWERS."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.answer: str | None = None
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if relay.answer is None:
                    reply: bytes | None = relay.forward(body)
                else:
                    reply = _ANSWERS[relay.answer](json.loads(body).get("id"))
                if reply is None:
                    self.close_connection = True
                    return
                self.send_response(200 if relay.answer != "not JSON" else 502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend() -> str:
    return "anvil"  # the relay sits in front of a JSON-RPC node


@pytest.fixture
def relay(anvil_url: str) -> Iterator[Relay]:
    relay = Relay(anvil_url)
    yield relay
    relay.close()


@pytest.mark.parametrize("answer", sorted(_ANSWERS))
def test_every_ledger_call_is_ledger_unavailable(
    make_config: ConfigFactory, cast: Cast, relay: Relay, answer: str
) -> None:
    config = make_config(timeout=2.0)
    with Ledger.open(config, deployer=cast.owner) as setup:
        cid, hashes = populate(setup, cast)
    config = make_config(url=relay.url, timeout=2.0, contract=config.contract)
    with Ledger.open(config, deployer=cast.owner) as ledger:
        relay.answer = answer
        calls: dict[str, Callable[[], object]] = {
            "store a record (a transaction)": lambda: ledger.store_record(
                cast.uploader, new_cid(), os.urandom(32), os.urandom(32), os.urandom(32)
            ),
            "read a record (a view)": lambda: ledger.get_record(cid),
            "the audit trail (a log query)": lambda: ledger.audit_trail(cid),
            "the receipt of a record (logs and the head)": lambda: ledger.record_receipt(cid),
        }
        for what, call in calls.items():
            with pytest.raises(LedgerUnavailable) as refused:
                call()
            assert "\n" not in str(refused.value), (what, str(refused.value))
            assert str(refused.value), what
        relay.answer = None
        assert ledger.verify_record(cid, *hashes).cid == cid
        item = new_cid()
        ledger.store_record(cast.uploader, item, os.urandom(32), os.urandom(32), os.urandom(32))
        assert ledger.get_record(item).cid == item


def test_a_revert_without_a_reason_is_ledger_unavailable(
    make_config: ConfigFactory, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storeImage mined out of gas (a gas limit far below what it needs): the receipt says
    reverted and the replay gives no reason; one line, 503/exit 5, and nothing is stored."""
    from scanseal.ledger import _contract

    with Ledger.open(make_config(), deployer=cast.owner) as ledger:
        populate(ledger, cast)
        monkeypatch.setitem(_contract._GAS, "storeImage", 60_000)
        cid = new_cid()
        with pytest.raises(LedgerUnavailable, match="reverted without a reason") as refused:
            ledger.store_record(cast.uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        assert "\n" not in str(refused.value)
        monkeypatch.undo()
        assert ledger.record_receipt(cid) is None
