"""A gateway that answers outside its protocol: the client refuses with GatewayUnavailable.

Each answer below once escaped GatewayClient as a TypeError, ValueError, KeyError or
OverflowError (found by tests/fuzz): a list where an object belongs, a missing field the CLI
reads, a chain id or address the signer cannot encode, a timestamp no calendar holds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

with warnings.catch_warnings():  # Starlette would rather test through httpx2, not installed here
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

from scanseal.client import GatewayClient, record_manifest
from scanseal.crypto.identity import Identity
from scanseal.errors import GatewayUnavailable, IntegrityError
from scanseal.transfer.upload import seal_for_upload

BASE = "http://testserver"
RECORD = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
HEALTH = {"chain_id": 31337, "contract": "0x" + "ab" * 20, "gateway": "0x" + "cd" * 20}
ENTRY = {"timestamp": 1_700_000_000, "action": "access", "actor": "0x" + "ef" * 20}


def gateway_answering(answer: Any, health: Any = HEALTH) -> TestClient:
    """``health`` on /v1/health (by default one requests can be signed for), else ``answer``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = health if scope["path"] == "/v1/health" else answer
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": raw})

    return TestClient(app, base_url=BASE)


@pytest.fixture(scope="module")
def me() -> Identity:
    return Identity.generate("hostile-test")


def call(me: Identity, answer: Any, action: str, tmp: Path | None = None) -> None:
    client = GatewayClient(BASE, me, http=gateway_answering(answer))
    if action == "health":
        GatewayClient(BASE, me, http=gateway_answering(None, health=answer)).signed("fetch", RECORD)
    elif action == "upload":
        assert tmp is not None
        image = Path(str(get_testdata_file("SC_rgb_small_odd.dcm")))
        client.upload(seal_for_upload(image, [me.card], me, tmp))
    elif action == "revoke":
        client.revoke(RECORD, me.address)
    elif action == "audit":
        client.audit(RECORD)
    elif action == "inbox":
        client.inbox()
    else:
        client.verify(RECORD)


HOSTILE = [
    ("health", []),
    ("health", {**HEALTH, "chain_id": "31337"}),
    ("health", {**HEALTH, "chain_id": -1}),
    ("health", {**HEALTH, "contract": False}),
    ("health", {**HEALTH, "gateway": "0x12"}),
    ("upload", {"record": RECORD}),
    ("revoke", ["revoked"]),
    ("audit", {"entries": []}),
    ("audit", [{**ENTRY, "timestamp": 10**20}]),
    ("audit", [{**ENTRY, "timestamp": 1.5}]),
    ("audit", [{k: v for k, v in ENTRY.items() if k != "actor"}]),
    ("inbox", {"records": [], "next": 1e400, "more": False}),
    ("inbox", {"records": [{"seq": 1}], "next": 1, "more": False}),
    ("inbox", {"records": [], "next": 0, "more": "no"}),
    ("verify", {"record": RECORD}),
    ("verify", {"checks": [1, 2]}),
    ("verify", {"record": RECORD, "checks": [], "manifest": {"screen": None}}),
]


@pytest.mark.parametrize(("action", "answer"), HOSTILE, ids=[f"{a}-{i}" for i, (a, _) in
                                                              enumerate(HOSTILE)])  # fmt: skip
def test_an_answer_outside_the_protocol_is_gateway_unavailable(
    me: Identity, action: str, answer: Any, tmp_path: Path
) -> None:
    with pytest.raises(GatewayUnavailable, match="outside its protocol"):
        call(me, answer, action, tmp_path)


def test_answers_inside_the_protocol_still_pass(me: Identity) -> None:
    assert GatewayClient(BASE, me, http=gateway_answering([ENTRY])).audit(RECORD) == [ENTRY]
    page = {"records": [{"seq": 3, "record": RECORD}], "next": 3, "more": False}
    assert GatewayClient(BASE, me, http=gateway_answering(page)).inbox() == page
    report = {"record": RECORD, "checks": ["manifest signed"]}
    assert GatewayClient(BASE, me, http=gateway_answering(report)).verify(RECORD) == report


def test_a_manifest_that_is_not_the_records_is_an_integrity_error(me: Identity) -> None:
    """A gateway may leave the manifest out of a verify answer, never swap it: the record's CID
    names the manifest."""
    with pytest.raises(IntegrityError, match="does not hash to the record's CID"):
        record_manifest('{"scanseal_manifest": 1}', RECORD)
