"""The gateway end to end: a real `scanseal serve` child process on the embedded chain and store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from gateway_harness import GatewayProcess, World, make_world
from scanseal.client import GatewayClient
from scanseal.crypto.identity import IdentityCard
from scanseal.errors import AccessDenied, InvalidInput, NotFound, ReplayDetected

CT = Path(str(get_testdata_file("CT_small.dcm")))
ABSENT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("gw"), ["ito", "lee", "novak"], ["mallory"])


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world).start()
    yield process
    process.stop()


def client(gateway: GatewayProcess, name: str) -> GatewayClient:
    return GatewayClient(gateway.url, gateway.world.people[name])


@pytest.fixture(scope="module")
def record(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    lee = gateway.world.people["lee"].card
    with client(gateway, "ito") as ito:
        answer = ito.send(CT, [lee], tmp_path_factory.mktemp("out"))
    return str(answer["manifest_cid"])


def test_health_and_openapi(gateway: GatewayProcess) -> None:
    with client(gateway, "lee") as lee:
        info = lee.health()
    assert info["gateway"] == gateway.world.people["gateway"].address
    schema = httpx.get(f"{gateway.url}/openapi.json").json()
    for path in ("/v1/records", "/v1/records/{record}", "/v1/records/{record}/grants"):
        assert path in schema["paths"]


def test_send_fetch_share_revoke(gateway: GatewayProcess, record: str, tmp_path: Path) -> None:
    people = gateway.world.people
    with client(gateway, "lee") as lee:
        opened = lee.fetch(record, tmp_path / "lee.dcm")
    assert opened.path.read_bytes() == CT.read_bytes()
    with client(gateway, "novak") as novak, client(gateway, "ito") as ito:
        with pytest.raises(AccessDenied):
            novak.fetch(record, tmp_path / "n0.dcm")
        ito.grant(record, people["novak"].card)
        assert novak.fetch(record, tmp_path / "n1.dcm").path.read_bytes() == CT.read_bytes()
        with pytest.raises(AccessDenied):  # only the owner may grant
            novak.grant(record, people["lee"].card)
        ito.revoke(record, people["novak"].address)
        with pytest.raises(AccessDenied):
            novak.fetch(record, tmp_path / "n2.dcm")
        trail = ito.audit(record)
    assert not (tmp_path / "n0.dcm").exists()
    assert not (tmp_path / "n2.dcm").exists()
    reasons = [e["reason"] for e in trail if e["action"] == "access" and not e["allowed"]]
    assert "no-grant" in reasons
    assert "revoked" in reasons
    assert {"stored", "granted", "revoked", "access"} <= {e["action"] for e in trail}


def test_replay_is_refused(gateway: GatewayProcess, record: str) -> None:
    with client(gateway, "lee") as lee:
        headers = lee.signed("fetch", record)
        first = httpx.get(f"{gateway.url}/v1/records/{record}", headers=headers)
        again = httpx.get(f"{gateway.url}/v1/records/{record}", headers=headers)
    assert first.status_code == 200
    assert again.status_code == ReplayDetected.http_status
    assert again.json()["error"] == "ReplayDetected"


def test_stranger_cannot_upload_and_verify_is_public(
    gateway: GatewayProcess, record: str, tmp_path: Path
) -> None:
    people = gateway.world.people
    with client(gateway, "mallory") as mallory:
        with pytest.raises(AccessDenied):
            mallory.send(CT, [people["lee"].card], tmp_path)
        with pytest.raises(AccessDenied):
            mallory.audit(record)
    with GatewayClient(gateway.url) as anonymous:
        checks = anonymous.verify(record)["checks"]
        assert any("ledger" in check for check in checks)
        with pytest.raises(NotFound):
            anonymous.verify(ABSENT)
    with client(gateway, "lee") as lee, pytest.raises(NotFound):
        lee.fetch(ABSENT, tmp_path / "absent.dcm")


def test_upload_for_an_unregistered_recipient_leaves_nothing(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    people = gateway.world.people
    with client(gateway, "ito") as ito:
        with pytest.raises(InvalidInput, match="not registered"):
            ito.send(CT, [people["mallory"].card], tmp_path)
        answer = ito.send(CT, [people["lee"].card], tmp_path / "again")
    assert answer["granted"] == [people["lee"].address, people["ito"].address]


def test_metrics(gateway: GatewayProcess, record: str) -> None:
    with client(gateway, "lee") as lee, client(gateway, "mallory") as mallory:
        lee.fetch_bundle(record)
        with pytest.raises(AccessDenied):
            mallory.fetch_bundle(record)
    text = httpx.get(f"{gateway.url}/metrics").text
    assert 'scanseal_requests_total{action="fetch",outcome="ok"}' in text
    assert 'scanseal_requests_total{action="fetch",outcome="AccessDenied"}' in text
    assert "scanseal_request_seconds_bucket" in text


def test_card_roundtrip(world: World) -> None:
    assert IdentityCard.load(world.cards["lee"]).address == world.people["lee"].address
