"""The fetch front (a bare ASGI answer to GET /v1/records/{record}) against FastAPI's own route.

Both run in this process on one gateway: the front as served, FastAPI's route by calling the
application behind the front. Same decision, same bytes, one nonce space. And a defect (an
exception ScanSeal does not define, injected into one Gateway method) is a JSON 500 on the
front and on FastAPI's routes alike, never plain text.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydicom.data import get_testdata_file

with warnings.catch_warnings():  # Starlette would rather test through httpx2, not installed here
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

from gateway_harness import PASSPHRASE, World, make_world
from scanseal.client import GatewayClient
from scanseal.errors import InvalidInput
from scanseal.service.app import create_app
from scanseal.service.gateway import Gateway
from scanseal.service.server import open_gateway

CT = Path(str(get_testdata_file("CT_small.dcm")))
BASE = "http://testserver"
ABSENT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    world = make_world(tmp_path, ["ito", "lee"], ["mallory"], mode="batched")
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    return world


@pytest.fixture
def apps(world: World) -> Iterator[tuple[TestClient, TestClient]]:
    gateway = open_gateway(world.config, PASSPHRASE)
    try:
        front = create_app(gateway)
        fetch_front = getattr(front, "_app")  # noqa: B009 - what the access log wraps
        fastapi = getattr(fetch_front, "_app")  # noqa: B009 - the application behind the front
        assert isinstance(fastapi, FastAPI)
        with TestClient(front, base_url=BASE) as served:
            yield served, TestClient(fastapi, base_url=BASE)
    finally:
        gateway.close()


def test_front_and_route_give_the_same_answers(
    world: World, apps: tuple[TestClient, TestClient], tmp_path: Path
) -> None:
    served, fastapi = apps
    people = world.people
    ito = GatewayClient(BASE, people["ito"], http=served)
    record = str(ito.send(CT, [people["lee"].card], tmp_path)["manifest_cid"])
    lee = GatewayClient(BASE, people["lee"], http=served)
    mallory = GatewayClient(BASE, people["mallory"], http=served)
    path = f"/v1/records/{record}"

    allowed = [app.get(path, headers=lee.signed("fetch", record)) for app in (served, fastapi)]
    assert [answer.status_code for answer in allowed] == [200, 200]
    assert allowed[0].content == allowed[1].content
    assert allowed[0].headers["content-type"] == allowed[1].headers["content-type"]
    assert lee.fetch(record, tmp_path / "lee.dcm").path.read_bytes() == CT.read_bytes()

    denied = [app.get(path, headers=mallory.signed("fetch", record)) for app in (served, fastapi)]
    assert [answer.status_code for answer in denied] == [403, 403]
    assert denied[0].content == denied[1].content
    assert denied[0].json()["error"] == "AccessDenied"

    once = lee.signed("fetch", record)
    assert served.get(path, headers=once).status_code == 200
    assert fastapi.get(path, headers=once).status_code == 409  # one nonce space
    twice = lee.signed("fetch", record)
    assert fastapi.get(path, headers=twice).status_code == 200
    assert served.get(path, headers=twice).status_code == 409
    unsigned = [app.get(path) for app in (served, fastapi)]
    assert [answer.status_code for answer in unsigned] == [400, 400]
    assert unsigned[0].content == unsigned[1].content
    assert unsigned[0].json()["error"] == "InvalidInput"


# --- a defect inside any route is still one JSON line, never plain text


@pytest.fixture
def served(world: World) -> Iterator[tuple[Gateway, TestClient]]:
    gateway = open_gateway(world.config, PASSPHRASE)
    try:
        with TestClient(create_app(gateway), raise_server_exceptions=False) as http:
            yield gateway, http
    finally:
        gateway.close()


def _defect(*_args: object) -> object:
    raise KeyError("a defect")


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", f"/v1/records/{ABSENT}", "fetch"),
        ("GET", f"/v1/records/{ABSENT}/verify", "verify"),
        ("GET", "/v1/health", "health"),
        ("POST", f"/v1/records/{ABSENT}/grants", "grant"),
    ],
)
def test_a_defect_is_a_json_500(
    served: tuple[Gateway, TestClient],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    route: str,
) -> None:
    gateway, http = served
    monkeypatch.setattr(gateway, route, _defect)
    answer = http.request(method, path)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": "InternalError",
        "reason": "internal error (KeyError); the gateway's log has the details",
    }
    monkeypatch.delattr(gateway, route)  # the class's method again
    assert http.get("/v1/health").status_code == 200


# --- a refusal whose reason quotes a lone surrogate is still a 400 with a JSON body


@pytest.mark.parametrize("request_json", [b'{"\\udcbe":1}', b'{"\xed\xb2\xbe":1}', b'{"\xbe":1}'])
def test_a_request_header_holding_a_lone_surrogate_is_a_400(
    served: tuple[Gateway, TestClient], request_json: bytes
) -> None:
    _, http = served
    encoded = base64.urlsafe_b64encode(request_json).decode("ascii")
    answer = http.post(
        f"/v1/records/{ABSENT}/revocations",
        content=b'{"grantee":"0x0"}',
        headers={"X-ScanSeal-Request": encoded, "X-ScanSeal-Signature": "0x" + "1" * 130},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "InvalidInput"


def test_a_reason_holding_a_lone_surrogate_is_escaped_not_a_500(
    served: tuple[Gateway, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, http = served

    def refuse(*_args: object) -> object:
        raise InvalidInput("unknown field '\udcbe'")  # a reason quoting outside text as is

    monkeypatch.setattr(gateway, "revoke", refuse)
    answer = http.post(f"/v1/records/{ABSENT}/revocations", content=b"{}")
    assert answer.status_code == 400
    assert answer.json() == {"error": "InvalidInput", "reason": "unknown field '\\udcbe'"}


def test_the_ledger_record_cache_is_bounded_and_an_evicted_record_is_read_again(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pydicom

    from scanseal.service import gateway as gateway_module

    monkeypatch.setattr(gateway_module, "_RECORDS_KEPT", 2)
    gateway = open_gateway(world.config, PASSPHRASE)
    try:
        with TestClient(create_app(gateway), base_url=BASE) as served:
            ito = GatewayClient(BASE, world.people["ito"], http=served)
            lee = GatewayClient(BASE, world.people["lee"], http=served)
            files, records = [], []
            for n in range(3):
                ds = pydicom.dcmread(CT)
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.{n + 1}"
                files.append(tmp_path / f"ct-{n}.dcm")
                ds.save_as(files[-1])
                sent = ito.send(files[-1], [world.people["lee"].card], tmp_path)
                records.append(str(sent["manifest_cid"]))
            for n, record in enumerate(records):
                opened = lee.fetch(record, tmp_path / f"out-{n}.dcm")
                assert opened.path.read_bytes() == files[n].read_bytes()
                assert len(gateway._records) <= 2
            assert records[0] not in gateway._records  # the oldest read went first
            again = lee.fetch(records[0], tmp_path / "again.dcm")  # read from the ledger again
            assert again.path.read_bytes() == files[0].read_bytes()
    finally:
        gateway.close()
