"""Upload, grant and revoke cut short right after their ledger write, as a crash would cut them.

The gateway runs in this process; a crash is an exception raised just after the ledger (or the
chain) took the write and before the gateway finished, so the answer never reaches the client.
Then either the gateway is opened again (its warm-up reconciles) or the client retries with a
freshly signed request. tests/service/test_kill_loop.py does the same with real SIGKILLs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

with warnings.catch_warnings():  # Starlette would rather test through httpx2, not installed here
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

from gateway_harness import PASSPHRASE, World, make_world
from scanseal.client import GatewayClient
from scanseal.errors import AccessDenied, GatewayUnavailable
from scanseal.ledger import Ledger
from scanseal.service.app import create_app
from scanseal.service.gateway import Gateway
from scanseal.service.server import open_gateway
from scanseal.service.state import GatewayState
from scanseal.transfer.records import cid_bytes
from scanseal.transfer.upload import seal_for_upload

CT = Path(str(get_testdata_file("CT_small.dcm")))
BASE = "http://testserver"
AUDITOR = 'auditors = ["novak"]'


class Crash(Exception):
    """The process died here: nothing after this point ran."""


@pytest.fixture(params=["per-record", "batched"])
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> World:
    world = make_world(tmp_path, ["ito", "lee", "novak"], mode=request.param)
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    return world


@contextmanager
def running(world: World) -> Iterator[tuple[Gateway, TestClient]]:
    """One life of the gateway: opened, warmed up (reconciling), serving in process."""
    gateway = open_gateway(world.config, PASSPHRASE)
    try:
        gateway.start()
        deadline = time.monotonic() + 30
        while not gateway.ready and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gateway.health()["status"] == "ok"
        with TestClient(create_app(gateway), base_url=BASE) as http:
            yield gateway, http
    finally:
        gateway.close()


@contextmanager
def dies() -> Iterator[None]:
    """The request that reaches the crash point: the exception ends its handler (nothing after
    it runs) and the client gets the gateway's 500 naming it."""
    with pytest.raises(GatewayUnavailable, match=r"internal error \(Crash\)"):
        yield


def crash_after(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> None:
    """Let ``owner.name`` run once more, then die right after it returns."""
    original = getattr(owner, name)

    def cut(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        monkeypatch.setattr(owner, name, original)
        raise Crash(name)

    monkeypatch.setattr(owner, name, cut)


def client(world: World, http: TestClient, name: str) -> GatewayClient:
    return GatewayClient(BASE, world.people[name], http=http)


def registrations(gateway: Gateway, record: str) -> int:
    """How many times the ledger registered ``record`` (its audit trail's "stored" entries)."""
    trail = gateway.locked(lambda: gateway.ledger.audit_trail(cid_bytes(record)))
    return sum(1 for entry in trail if entry.action == "stored")


def sealed_for_lee(world: World, tmp_path: Path) -> Any:
    return seal_for_upload(CT, [world.people["lee"].card], world.people["ito"], tmp_path)


def test_upload_cut_after_the_ledger_is_finished_by_the_restart(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sealed = sealed_for_lee(world, tmp_path)
    crash_after(monkeypatch, Ledger, "store_record")
    with running(world) as (_gateway, http), dies():
        client(world, http, "ito").upload(sealed)
    with running(world) as (gateway, http):  # nobody retried: the warm-up finished it
        assert gateway.state.pending_uploads() == []
        lee = client(world, http, "lee")
        (held,) = lee.inbox()["records"]
        opened = lee.fetch(held["record"], tmp_path / "lee.dcm")
        assert opened.path.read_bytes() == CT.read_bytes()
        assert registrations(gateway, held["record"]) == 1


@pytest.mark.parametrize("cut", [(Ledger, "store_record"), (GatewayState, "add_record")])
def test_retry_of_a_cut_upload_answers_the_first_receipt_once(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cut: tuple[type, str]
) -> None:
    sealed = sealed_for_lee(world, tmp_path)
    crash_after(monkeypatch, *cut)
    with running(world) as (gateway, http):
        ito = client(world, http, "ito")
        with dies():
            ito.upload(sealed)
        retried = ito.upload(sealed)  # a fresh request for the same manifest
        again = ito.upload(sealed)
        record = retried["manifest_cid"]
        first = gateway.locked(lambda: gateway.ledger.record_receipt(cid_bytes(record)))
        assert first is not None
        assert retried["ledger"]["tx_hash"] == first.tx_hash
        assert retried["ledger"]["log_index"] == first.log_index
        assert again == retried
        assert registrations(gateway, record) == 1
        opened = client(world, http, "lee").fetch(record, tmp_path / "lee.dcm")
        assert opened.path.read_bytes() == CT.read_bytes()


def uploaded_then_cut(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, action: str, whom: Any
) -> str:
    """Ito uploads for Lee, then ``action`` (grant or revoke) dies right after the chain."""
    with running(world) as (_gateway, http):
        ito = client(world, http, "ito")
        record = str(ito.upload(sealed_for_lee(world, tmp_path))["manifest_cid"])
        crash_after(monkeypatch, Ledger, action)
        with dies():
            getattr(ito, action)(record, whom)
    return record


def test_grant_cut_after_the_chain_grant_still_serves_the_grant(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    novak_card = world.people["novak"].card
    record = uploaded_then_cut(world, monkeypatch, tmp_path, "grant", novak_card)
    with running(world) as (_gateway, http):
        novak = client(world, http, "novak")
        assert novak.inbox()["records"][0]["record"] == record
        opened = novak.fetch(record, tmp_path / "novak.dcm")  # needs the grant object
        assert opened.path.read_bytes() == CT.read_bytes()
        assert client(world, http, "ito").grant(record, novak_card)["ledger"] is None


def test_revoke_cut_after_the_chain_revoke_can_be_retried(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lee = world.people["lee"].address
    record = uploaded_then_cut(world, monkeypatch, tmp_path, "revoke", lee)
    with running(world) as (_gateway, http):
        assert client(world, http, "ito").revoke(record, lee) == {"revoked": lee, "ledger": None}
        with pytest.raises(AccessDenied):
            client(world, http, "lee").fetch(record, tmp_path / "lee.dcm")


def test_repeated_upload_leaves_a_revoked_recipient_revoked(world: World, tmp_path: Path) -> None:
    sealed = sealed_for_lee(world, tmp_path)
    with running(world) as (_gateway, http):
        ito = client(world, http, "ito")
        record = ito.upload(sealed)["manifest_cid"]
        ito.revoke(record, world.people["lee"].address)
        ito.upload(sealed)
        with pytest.raises(AccessDenied):
            client(world, http, "lee").fetch(record, tmp_path / "lee.dcm")


def test_health_says_starting_until_the_warm_up_is_done(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate: list[Callable[[], None]] = []
    original = Ledger.catch_up

    def slow(self: Ledger) -> None:
        while not gate:
            time.sleep(0.01)
        original(self)

    monkeypatch.setattr(Ledger, "catch_up", slow)
    gateway = open_gateway(world.config, PASSPHRASE)
    try:
        gateway.start()
        with TestClient(create_app(gateway), base_url=BASE) as http:
            answer = http.get("/v1/health")
            assert (answer.status_code, answer.json()["status"]) == (503, "starting")
            gate.append(lambda: None)
            deadline = time.monotonic() + 30
            while http.get("/v1/health").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert http.get("/v1/health").json()["status"] == "ok"
    finally:
        gateway.close()


def test_an_upload_finished_by_the_restart_is_marked_in_the_audit_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batched: the index learns of a record's log entries only when the gateway marks it. An
    audit query that syncs the index between the upload's mark and its ledger write (here: just
    before the write) reads the trail without the stored entry; then the process dies. The
    restart's warm-up finishes the upload, and the next query must list the stored entry
    without having to repair the index."""
    world = make_world(tmp_path, ["ito", "lee", "novak"], mode="batched", extra=AUDITOR)
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    sealed = sealed_for_lee(world, tmp_path)
    with running(world) as (gateway, http):
        original = Ledger.store_record

        def synced_then_cut(*args: Any, **kwargs: Any) -> Any:
            gateway.audit_index.sync(gateway.ledger, gateway.state.held())  # a query's sync
            original(*args, **kwargs)
            monkeypatch.setattr(Ledger, "store_record", original)
            raise Crash("store_record")

        monkeypatch.setattr(Ledger, "store_record", synced_then_cut)
        with dies():
            client(world, http, "ito").upload(sealed)
    with running(world) as (gateway, http):
        assert gateway.state.pending_uploads() == []
        (record,) = gateway.state.held()
        novak = client(world, http, "novak")
        stored = novak.audit_page(action="stored")["events"]
        assert [(e["record"], e["source"]) for e in stored] == [(record, "batch")]
        assert novak.audit_page()["repaired"] == 0
