"""What a real gateway writes to the ledger says what happened: a grant is a grant (not a
download), a refused grant or revocation is a denied grant or revocation, a request whose
signature does not verify is an unauthenticated attempt whose claimed identity stays unverified,
and a refused audit read is logged. Per-record and batched mode alike, in chain order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from gateway_harness import GatewayProcess, World, make_world
from scanseal.client import GatewayClient
from scanseal.errors import AccessDenied
from scanseal.protocol.signed import new_request, sign_request

CT = Path(str(get_testdata_file("CT_small.dcm")))


@pytest.fixture(scope="module", params=["per-record", "batched"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("audit-events")
    world: World = make_world(root, ["ito", "lee", "novak"], ["mallory"], mode=request.param)
    process = GatewayProcess(world).start()
    yield process
    process.stop()


def _client(gateway: GatewayProcess, name: str) -> GatewayClient:
    return GatewayClient(gateway.url, gateway.world.people[name])


@pytest.fixture(scope="module")
def shared(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """ito sends to lee, grants novak; novak fetches once."""
    people = gateway.world.people
    out = tmp_path_factory.mktemp("sent")
    with _client(gateway, "ito") as ito, _client(gateway, "novak") as novak:
        record = str(ito.send(CT, [people["lee"].card], out)["manifest_cid"])
        ito.grant(record, people["novak"].card)
        novak.fetch(record, out / "novak.dcm")
    return record


def _trail(gateway: GatewayProcess, record: str) -> list[dict]:
    with _client(gateway, "ito") as ito:
        return ito.audit(record)


def test_send_grant_fetch_is_stored_grants_and_one_access(
    gateway: GatewayProcess, shared: str
) -> None:
    trail = _trail(gateway, shared)
    assert [(e["action"], e["subject_name"]) for e in trail] == [
        ("stored", None),
        ("granted", "lee"),
        ("granted", "ito"),  # the sender is one of the manifest's recipients
        ("granted", "novak"),
        ("access", "novak"),
    ]
    assert [e["outcome"] for e in trail] == ["success"] * 5
    assert {e["actor_name"] for e in trail} == {"gateway"}
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in trail)


def test_refused_grant_and_revoke_are_logged_as_such(gateway: GatewayProcess, shared: str) -> None:
    people = gateway.world.people
    with _client(gateway, "novak") as novak, pytest.raises(AccessDenied):
        novak.grant(shared, people["lee"].card)  # a grantee is no owner
    with _client(gateway, "lee") as lee, pytest.raises(AccessDenied):
        lee.revoke(shared, people["novak"].address)
    attempts = [e for e in _trail(gateway, shared) if e["outcome"] != "success"]
    assert [
        (e["action"], e["access_type"], e["outcome"], e["reason"], e["subject_name"])
        for e in attempts
    ] == [
        ("granted", "grant", "denied", "not-permitted", "novak"),
        ("revoked", "revoke", "denied", "not-permitted", "lee"),
    ]
    accesses = [e for e in _trail(gateway, shared) if e["action"] == "access"]
    assert len(accesses) == 1  # still only novak's one fetch


def test_forged_signatures_cannot_write_denials_under_a_members_name(
    gateway: GatewayProcess, shared: str
) -> None:
    """mallory signs requests that claim to be lee (a fetch) and ito (a grant)."""
    people = gateway.world.people
    with GatewayClient(gateway.url) as anonymous:
        domain = anonymous.domain
    mallory = people["mallory"].account
    claims = [
        ("fetch", f"/v1/records/{shared}", people["lee"].account),
        ("grant", f"/v1/records/{shared}/header", people["ito"].account),
    ]
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        for action, path, victim in claims:
            forged = sign_request(mallory, domain, new_request(victim, domain, action, shared))
            assert http.get(path, headers=forged).status_code == 403
    trail = _trail(gateway, shared)
    forged_entries = [e for e in trail if e["outcome"] == "unauthenticated"]
    assert [(e["action"], e["subject"], e["claimed_name"]) for e in forged_entries] == [
        ("access", people["lee"].address, "lee"),
        ("granted", people["ito"].address, "ito"),
    ]
    for entry in forged_entries:
        assert entry["subject_verified"] is False
        assert entry["subject_name"] is None
        assert entry["reason"] == "bad-signature"
    bad = [e for e in trail if e["reason"] == "bad-signature"]
    assert bad == forged_entries  # none of them reads as a verified denial of lee or ito


def test_refused_audit_read_is_logged(gateway: GatewayProcess, shared: str) -> None:
    people = gateway.world.people
    with GatewayClient(gateway.url, people["mallory"]) as mallory, pytest.raises(AccessDenied):
        mallory.audit(shared)
    refused = [e for e in _trail(gateway, shared) if e["access_type"] == "audit"]
    assert [(e["action"], e["subject"], e["outcome"]) for e in refused] == [
        ("access", people["mallory"].address, "denied")
    ]
    assert refused[0]["subject_name"] is None  # no member card names a stranger


def test_cli_audit_through_the_gateway_names_everyone(gateway: GatewayProcess, shared: str) -> None:
    args = ["audit", shared, "--as", "ito", "--gateway", gateway.url, "--format", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "scanseal", *args],
        capture_output=True, text=True, env=gateway.world.env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trail = json.loads(done.stdout)
    assert [e["action"] for e in trail][:5] == ["stored", "granted", "granted", "granted", "access"]
    assert [e["subject_name"] for e in trail][1:5] == ["lee", "ito", "novak", "novak"]
    assert all(e["actor_name"] == "gateway" for e in trail)
    assert sum(e["action"] == "access" and e["outcome"] == "success" for e in trail) == 1
