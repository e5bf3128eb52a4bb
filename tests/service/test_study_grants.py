"""Uploads whose recipients' grant waits for their study record (``"grants": "study"``).

The gateway runs in this process over its real chain and store (both ledger modes). An
instance uploaded so is registered and held but closed to its recipients until a study record
that lists it is registered: then one grant transaction opens the whole study, each read of an
instance is decided through the study record (``logAccessVia``), and revoking the study closes
every instance. The flag is part of the signed body, so nobody can set it on another's upload;
a restart in between keeps the instances closed, and a study whose registration a crash cut
short is finished by the restart.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from tests.service.test_crash_consistency import client, crash_after, dies, running

from gateway_harness import World, make_world
from scanseal.errors import AccessDenied
from scanseal.ledger import GrantState
from scanseal.protocol import wire
from scanseal.service.gateway import Gateway
from scanseal.service.inbox import Inbox
from scanseal.storage import cid_of
from scanseal.transfer.records import Records, cid_bytes
from scanseal.transfer.study_manifest import StudyManifest
from scanseal.transfer.upload import seal_for_upload
from study_objects import ct_images, write


@pytest.fixture(params=["per-record", "batched"])
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> World:
    world = make_world(tmp_path, ["ito", "lee", "novak"], mode=request.param)
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    return world


def sealed_study(world: World, tmp_path: Path, count: int = 3) -> tuple[str, list[Any]]:
    """``count`` CT images of one new study, sealed by ito for lee."""
    study = generate_uid()
    paths = write(ct_images(study, count), tmp_path / "in")
    ito, lee = world.people["ito"], world.people["lee"]
    return study, [seal_for_upload(p, [lee.card], ito, tmp_path / f"s{i}")
                   for i, p in enumerate(paths)]  # fmt: skip


def study_manifest(world: World, study: str, records: list[str]) -> StudyManifest:
    ito = world.people["ito"]
    built = StudyManifest.build(study, records, ito.name, ito.address, int(time.time()))
    return built.signed_by(ito.sign)


def reads_of(gateway: Gateway, record: str, account: str) -> list[tuple[bool | None, str]]:
    trail = gateway.locked(lambda: gateway.ledger.audit_trail(cid_bytes(record)))
    return [(e.allowed, e.reason) for e in trail if e.action == "access" and e.subject == account]


def grants_of(gateway: Gateway, record: str) -> list[str]:
    trail = gateway.locked(lambda: gateway.ledger.audit_trail(cid_bytes(record)))
    return [str(e.subject) for e in trail if e.action == "granted"]


@pytest.fixture
def vias(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    """The ``via`` of every fetch decision the gateway reports (the real report runs)."""
    seen: list[bytes | None] = []
    original = Records.authorize_fetch

    def spy(self: Records, record: bytes, requester: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("via", args[1] if len(args) > 1 else None))
        return original(self, record, requester, *args, **kwargs)

    monkeypatch.setattr(Records, "authorize_fetch", spy)
    return seen


def test_instances_open_with_their_study_and_close_with_its_revocation(
    world: World, tmp_path: Path, vias: list[bytes | None]
) -> None:
    study, sealed = sealed_study(world, tmp_path)
    sources = sorted((tmp_path / "in").iterdir())
    lee = world.people["lee"].address
    with running(world) as (gateway, http):
        ito = client(world, http, "ito")
        uploads = [ito.upload(s, with_study=True) for s in sealed]
        records = [str(u["manifest_cid"]) for u in uploads]
        assert all(u["granted"] == [] for u in uploads)
        as_lee, as_novak = client(world, http, "lee"), client(world, http, "novak")
        assert as_lee.inbox()["records"] == []  # announced to nobody yet
        for record in records:  # registered, held, closed: each attempt logged as denied
            assert ito.holds(record)
            assert gateway.locked(lambda r=record: grants_of(gateway, r)) == []
            with pytest.raises(AccessDenied, match="no-grant"):
                as_lee.fetch(record, tmp_path / "early.dcm")
            assert reads_of(gateway, record, lee) == [(False, "no-grant")]

        manifest = study_manifest(world, study, records)
        answer = ito.register_study(manifest)
        assert len(answer["grants"]) == 1  # one grant transaction for the whole study
        study_cid = str(answer["study_cid"])
        assert sorted(grants_of(gateway, study_cid)) == sorted([world.people["ito"].address, lee])
        reserved = [gateway.identity.address] if gateway.ledger.mode == "batched" else []
        for record in records:  # no recipient grant of its own; batched: reserved, no more
            assert grants_of(gateway, record) == reserved
        again = ito.register_study(manifest)
        assert again["grants"] == []  # a repeated registration grants nothing new
        assert {e["record"] for e in as_lee.inbox()["records"]} == set(records)

        vias.clear()
        for index, record in enumerate(records):
            opened = as_lee.fetch(record, tmp_path / f"lee{index}.dcm")
            assert opened.path.read_bytes() in {p.read_bytes() for p in sources}
            assert reads_of(gateway, record, lee) == [(False, "no-grant"), (True, "none")]
            with pytest.raises(AccessDenied, match="no-grant"):
                as_novak.fetch(record, tmp_path / "novak.dcm")  # never a recipient
        assert vias[0::2] == [cid_bytes(study_cid)] * len(records)  # lee: through the study

        ito.revoke_study(study_cid, lee)
        for record in records:
            with pytest.raises(AccessDenied, match="revoked"):
                as_lee.fetch(record, tmp_path / "late.dcm")
        assert as_lee.inbox()["records"] == []
        assert ito.register_study(manifest)["grants"] == []  # the same study: nothing reopens
        time.sleep(1.1)  # another created_at: another study record over the same instances
        newer = ito.register_study(study_manifest(world, study, records))
        assert newer["study_cid"] != study_cid
        assert grants_of(gateway, str(newer["study_cid"])) == [world.people["ito"].address]
        for record in records:  # lee was revoked on a study of them: nothing reopens for lee
            assert grants_of(gateway, record) == reserved
            with pytest.raises(AccessDenied, match="revoked"):
                as_lee.fetch(record, tmp_path / "late.dcm")


def test_the_flag_is_signed_and_strips_nobody_of_a_grant(world: World, tmp_path: Path) -> None:
    """The deferral is in the signed body: added to another's signed upload it breaks the
    signature; someone else cannot upload ito's manifest at all; ito's own repeat of an
    upload already granted leaves the grant; an unknown value is refused."""
    _study, (first, second) = sealed_study(world, tmp_path, count=2)
    lee = world.people["lee"].address
    with running(world) as (gateway, http):
        ito, novak = client(world, http, "ito"), client(world, http, "novak")

        def body(sealed: Any, **extra: str) -> tuple[str, bytes]:
            manifest = sealed.manifest_path.read_bytes()
            meta = {"manifest": manifest.decode(), **extra}
            return cid_of(io.BytesIO(manifest)), wire.pack(meta, sealed.envelope.read_bytes())

        def post(headers: dict[str, str], content: bytes) -> Any:
            headers = {**headers, "Content-Type": wire.MEDIA_TYPE}
            return http.post("/v1/records", headers=headers, content=content)

        record, plain = body(first)
        _same, flagged = body(first, grants="study")
        refused = post(ito.signed("upload", record, plain), flagged)  # ito signed the other
        assert refused.status_code == 403
        assert "signed for another action, record or body" in refused.json()["reason"]
        assert gateway.state.record(record) is None  # nothing stored, nothing registered
        stolen = post(novak.signed("upload", record, flagged), flagged)  # novak's own request
        assert stolen.status_code == 403
        assert "only the manifest's uploader" in stolen.json()["reason"]

        granted = ito.upload(first)["granted"]  # at once: ito and lee granted on the record
        assert sorted(granted) == sorted([world.people["ito"].address, lee])
        assert ito.upload(first, with_study=True)["manifest_cid"] == record  # a repeat
        assert gateway.state.awaiting_study([record]) == set()
        assert gateway.locked(lambda: gateway.ledger.grant_state(cid_bytes(record), lee)) == (
            GrantState.ACTIVE
        )
        client(world, http, "lee").fetch(record, tmp_path / "lee.dcm")

        other, odd = body(second, grants="later")
        answer = post(ito.signed("upload", other, odd), odd)
        assert answer.status_code == 400
        assert '"study"' in answer.json()["reason"]
        other, extra = body(second, grantee=lee)
        assert post(ito.signed("upload", other, extra), extra).status_code == 422  # as before
        assert gateway.state.record(other) is None


def test_a_restart_before_the_study_keeps_its_instances_closed(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One upload dies after the ledger took it, the gateway restarts: its reconciliation
    finishes that upload without granting it (nor the others); the study's registration
    then opens all of them."""
    study, sealed = sealed_study(world, tmp_path)
    lee = world.people["lee"].address
    with running(world) as (_gateway, http):
        ito = client(world, http, "ito")
        records = [str(ito.upload(s, with_study=True)["manifest_cid"]) for s in sealed[:2]]
        crash_after(monkeypatch, Records, "register")
        with dies():
            ito.upload(sealed[2], with_study=True)
    with running(world) as (gateway, http):
        assert gateway.state.pending_uploads() == []  # the warm-up finished the cut upload
        held = [r for r in gateway.state.held() if r not in records]
        records += held
        assert len(records) == 3
        assert gateway.state.awaiting_study(records) == set(records)
        for record in records:
            assert grants_of(gateway, record) == []
            state = gateway.locked(lambda r=record: gateway.ledger.grant_state(cid_bytes(r), lee))
            assert state == GrantState.NEVER
        as_lee = client(world, http, "lee")
        assert as_lee.inbox()["records"] == []
        with pytest.raises(AccessDenied):
            as_lee.fetch(records[2], tmp_path / "early.dcm")
        client(world, http, "ito").register_study(study_manifest(world, study, records))
        assert gateway.state.awaiting_study(records) == set()
        for index, record in enumerate(records):
            as_lee.fetch(record, tmp_path / f"lee{index}.dcm")


def test_a_study_registration_cut_after_its_grants_is_finished_by_the_restart(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    study, sealed = sealed_study(world, tmp_path, count=2)
    with running(world) as (_gateway, http):
        ito = client(world, http, "ito")
        records = [str(ito.upload(s, with_study=True)["manifest_cid"]) for s in sealed]
        crash_after(monkeypatch, Inbox, "announce")  # grants on chain, waiting marks left
        with dies():
            ito.register_study(study_manifest(world, study, records))
    with running(world) as (gateway, http):  # nobody registers it again: the warm-up settles
        assert gateway.state.awaiting_study(records) == set()
        as_lee = client(world, http, "lee")
        assert {e["record"] for e in as_lee.inbox()["records"]} == set(records)
        for index, record in enumerate(records):
            as_lee.fetch(record, tmp_path / f"lee{index}.dcm")


def test_a_study_of_another_owners_instances_grants_nothing(world: World, tmp_path: Path) -> None:
    """Novak lists ito's waiting instances in a study of its own: refused before any grant."""
    study, sealed = sealed_study(world, tmp_path, count=1)
    with running(world) as (gateway, http):
        records = [str(client(world, http, "ito").upload(sealed[0], with_study=True)
                       ["manifest_cid"])]  # fmt: skip
        novak = world.people["novak"]
        built = StudyManifest.build(study, records, novak.name, novak.address, int(time.time()))
        with pytest.raises(AccessDenied, match="not the owner of instance record"):
            client(world, http, "novak").register_study(built.signed_by(novak.sign))
        assert gateway.state.awaiting_study(records) == set(records)
        assert grants_of(gateway, records[0]) == []
