"""500 unauthorized fetches against a real gateway: every one refused, every one on the ledger.

Strangers, a revoked grantee, signatures forged with another key, signatures under another
domain, mangled signatures, the wrong record, requests signed for one record and sent for
another, expired, over-long and future-dated requests. The ledger (batched mode here, so the
suite stays fast) must hold one denied entry per attempt afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from gateway_harness import RESULTS, GatewayProcess, World, denied_counts, make_world
from scanseal.client import GatewayClient
from scanseal.protocol.signed import SIGNATURE_HEADER, Domain, new_request, sign_request

CT = Path(str(get_testdata_file("CT_small.dcm")))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("unauth")
    return make_world(root, ["ito", "lee", "novak"], ["mallory"], mode="batched")


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def records(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """R: ito -> lee, with novak granted then revoked. R2: ito -> novak only."""
    people = gateway.world.people
    out = tmp_path_factory.mktemp("sent")
    with GatewayClient(gateway.url, people["ito"]) as ito:
        first = str(ito.send(CT, [people["lee"].card], out)["manifest_cid"])
        ito.grant(first, people["novak"].card)
        ito.revoke(first, people["novak"].address)
        (out / "two").mkdir()
        second = str(ito.send(CT, [people["novak"].card], out / "two")["manifest_cid"])
    return first, second


def _attempts(gateway: GatewayProcess, first: str, second: str) -> list[tuple[str, str, dict]]:
    """(category, path record, headers) for all 500 attempts."""
    people = gateway.world.people
    with GatewayClient(gateway.url) as anonymous:
        domain = anonymous.domain
    lee, mallory, novak = people["lee"].account, people["mallory"].account, people["novak"].account
    other_domain = Domain(domain.chain_id + 1, domain.contract, domain.gateway)
    now = int(time.time())
    expired = {"issued_at": now - 99, "expires_at": now - 9}

    def signed(account, record: str, *, by=None, under: Domain = domain, **times) -> dict:
        request = new_request(account, domain, "fetch", record)
        if times:
            request = dataclasses.replace(request, **times)
        return sign_request(by or account, under, request)

    def mangled() -> tuple[str, dict]:
        headers = signed(lee, first)
        return first, {**headers, SIGNATURE_HEADER: "0x" + os.urandom(65).hex()}

    plan: list[tuple[str, int, Callable[[], tuple[str, dict]]]] = [
        ("stranger", 100, lambda: (first, signed(mallory, first))),
        ("revoked grantee", 100, lambda: (first, signed(novak, first))),
        ("forged: another key", 35, lambda: (first, signed(lee, first, by=mallory))),
        ("forged: another domain", 35, lambda: (first, signed(lee, first, under=other_domain))),
        ("forged: mangled signature", 30, mangled),
        ("wrong record", 50, lambda: (second, signed(lee, second))),
        ("signed for another record", 50, lambda: (second, signed(lee, first))),
        ("expired", 50, lambda: (first, signed(lee, first, **expired))),
        ("over-long lifetime", 25, lambda: (first, signed(lee, first, expires_at=now + 3600))),
        ("issued in the future", 25, lambda: (first, signed(lee, first, issued_at=now + 600))),
    ]  # fmt: skip
    attempts = []
    for category, count, make in plan:
        for _ in range(count):
            record, headers = make()
            attempts.append((category, record, headers))
    return attempts


def test_500_unauthorized_attempts_blocked_and_logged(
    gateway: GatewayProcess, records: tuple[str, str]
) -> None:
    first, second = records
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        before = sum(denied_counts(ito.audit(first)).values())
        before += sum(denied_counts(ito.audit(second)).values())
    attempts = _attempts(gateway, first, second)
    assert len(attempts) == 500
    blocked = 0
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        for category, record, headers in attempts:
            answer = http.get(f"/v1/records/{record}", headers=headers)
            assert answer.status_code in (403, 409), (category, answer.text)
            assert answer.headers["content-type"].startswith("application/json")
            blocked += 1
    with GatewayClient(gateway.url, people["ito"]) as ito:
        after_first = denied_counts(ito.audit(first))
        after_second = denied_counts(ito.audit(second))
    logged = sum(after_first.values()) + sum(after_second.values()) - before
    RESULTS["unauthorized fetches (7 kinds)"] = (len(attempts), blocked, logged, "logged")
    assert blocked == 500
    assert logged == 500
    assert after_first["bad-signature"] >= 100
    assert after_first["replay"] >= 100  # expired and out-of-window requests
    assert after_first["revoked"] >= 100
