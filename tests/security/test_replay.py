"""200 replays of captured requests, half of them after the gateway was restarted.

The captured requests are valid and long-lived (300 s, the gateway's maximum), so after the
restart only the persisted nonce can refuse them: the test checks the refusal names the nonce,
not the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from gateway_harness import RESULTS, GatewayProcess, World, denied_counts, make_world
from scanseal.client import GatewayClient
from scanseal.protocol.signed import new_request, sign_request

CT = Path(str(get_testdata_file("CT_small.dcm")))
CAPTURED = 100


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("replay"), ["ito", "lee"], mode="batched")


def test_200_replays_blocked_even_after_restart(world: World, tmp_path: Path) -> None:
    gateway = GatewayProcess(world).start()
    try:
        record, capture = _record_sent_to_lee(gateway, world, tmp_path)
        captured = [capture() for _ in range(CAPTURED)]
        blocked = 0
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            for headers in captured:  # the genuine requests, each served once
                assert http.get(f"/v1/records/{record}", headers=headers).status_code == 200
            for headers in captured:
                blocked += _refused_as_replay(http, record, headers)
        gateway.stop()
        gateway = GatewayProcess(world).start()  # same home: same chain, store and nonces
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            for headers in captured:
                blocked += _refused_as_replay(http, record, headers)
        with GatewayClient(gateway.url, world.people["ito"]) as ito:
            logged = denied_counts(ito.audit(record)).get("replay", 0)
    finally:
        gateway.stop()
    RESULTS["replays (half after a gateway restart)"] = (2 * CAPTURED, blocked, logged, "logged")
    assert blocked == 2 * CAPTURED
    assert logged == 2 * CAPTURED


def _record_sent_to_lee(
    gateway: GatewayProcess, world: World, tmp_path: Path
) -> tuple[str, Callable[[], dict[str, str]]]:
    """A record ito sent to lee, and a maker of lee's valid 300-second fetch requests for it."""
    people = world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        record = str(ito.send(CT, [people["lee"].card], tmp_path)["manifest_cid"])
        domain = ito.domain
    lee = people["lee"].account

    def capture() -> dict[str, str]:
        return sign_request(lee, domain, new_request(lee, domain, "fetch", record, lifetime=300))

    return record, capture


def _refused_as_replay(http: httpx.Client, record: str, headers: dict[str, str]) -> int:
    answer = http.get(f"/v1/records/{record}", headers=headers)
    assert answer.status_code == 409, answer.text
    assert answer.json() == {
        "error": "ReplayDetected",
        "reason": "request nonce was already used (replay)",
    }
    return 1


def test_concurrent_copies_of_one_request_are_served_once(world: World, tmp_path: Path) -> None:
    """Nonces are committed in groups: copies of one request racing in the same group, among
    distinct requests, must still be served exactly once, and nothing served may pass after a
    restart."""
    gateway = GatewayProcess(world).start()
    try:
        record, capture = _record_sent_to_lee(gateway, world, tmp_path)
        copied = capture()
        batch = [copied] * 30 + [capture() for _ in range(30)]
        with ThreadPoolExecutor(len(batch)) as pool:
            codes = list(pool.map(lambda headers: _status(gateway.url, record, headers), batch))
        assert codes[30:] == [200] * 30
        assert sorted(codes[:30]) == [200] + [409] * 29
        gateway.stop()
        gateway = GatewayProcess(world).start()
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            assert sum(_refused_as_replay(http, record, headers) for headers in batch[29:]) == 31
    finally:
        gateway.stop()


def _status(url: str, record: str, headers: dict[str, str]) -> int:
    return httpx.get(f"{url}/v1/records/{record}", headers=headers, timeout=60).status_code
