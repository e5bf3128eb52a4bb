"""The fetch front (a bare ASGI answer to GET /v1/records/{record}) against FastAPI's own route.

Both run in this process on one gateway: the front as served, FastAPI's route by calling the
application behind the front. Same decision, same bytes, one nonce space.
"""

from __future__ import annotations

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
from scanseal.service import GatewayClient
from scanseal.service.app import create_app
from scanseal.service.server import open_gateway

CT = Path(str(get_testdata_file("CT_small.dcm")))
BASE = "http://testserver"


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
        fastapi = getattr(front, "_app")  # noqa: B009 - the application behind the front
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
