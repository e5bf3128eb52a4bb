"""The spool's crash points, deterministically, over a real gateway in this process (embedded
chain and store): a crash after registration but before the entry was deleted registers
nothing twice; one after the record was noted but before registration registers it once; an
entry is a ScanSeal envelope for the gateway's own identity and nothing else opens it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from tests.dicom.scu import count

from gateway_harness import PASSPHRASE, World, make_world
from scanseal.crypto.envelope import open_envelope
from scanseal.crypto.identity import Identity
from scanseal.dicom._drain import Drain
from scanseal.dicom.config import DicomConfig
from scanseal.dicom.index import DicomIndex
from scanseal.dicom.scp import Receiver
from scanseal.dicom.spool import Entry, Spool
from scanseal.errors import NotARecipient


@dataclass
class Rig:
    world: World
    gateway: object
    receiver: Receiver

    def spool(self) -> Spool:
        """The spool as a (re)started gateway opens it."""
        identity = self.receiver.identity
        return Spool.at(self.world.home / "gateway", identity, 100, 64)

    def records(self) -> int:
        return count(self.world.home / "gateway" / "gateway.sqlite3", "records")

    def indexed(self, uid: str) -> list[str]:
        return [
            i.manifest_cid for i in self.receiver.index.instances() if i.sop_instance_uid == uid
        ]

    def restart(self) -> None:
        """What ``scanseal serve`` does with the spool at start: drain what it holds."""
        spool = self.spool()
        drain = Drain(spool, self.receiver, 1).start()
        assert spool.wait_empty(60)
        drain.stop()


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    from scanseal.service.server import open_gateway, pending_upload

    world = make_world(tmp_path, ["lee"], mode="batched")
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    gateway = open_gateway(world.config, PASSPHRASE)
    config = DicomConfig(recipients=(world.cards["lee"],))
    index = DicomIndex.at(world.home / "gateway")
    receiver = Receiver(gateway, gateway.identity, config, index)
    receiver.recorded = lambda cid: gateway.state.record(cid) is not None
    receiver.pending = lambda cid: pending_upload(gateway, cid)  # as `scanseal serve` wires it
    try:
        yield Rig(world, gateway, receiver)
    finally:
        index.close()
        gateway.close()


def instance() -> tuple[bytes, str]:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), str(ds.SOPInstanceUID)


def spooled(spool: Spool, raw: bytes) -> Entry:
    assert spool.reserve(len(raw), 0)
    return spool.put(raw, "CT1", len(raw))


def test_a_crash_after_registration_before_the_entry_is_deleted_makes_no_second_record(rig: Rig):
    raw, uid = instance()
    spool = rig.spool()
    entry = spooled(spool, raw)
    sealed = rig.receiver.prepare(spool, entry, spool.open(entry))
    assert sealed is not None
    record = rig.receiver.register(sealed, "CT1")
    before = rig.records()  # registered; the crash comes before spool.remove(entry)
    rig.restart()
    assert rig.records() == before
    assert rig.indexed(uid) == [record]
    assert rig.spool().entries() == []


def test_a_crash_after_the_record_was_noted_before_registration_registers_it_once(rig: Rig):
    raw, uid = instance()
    spool = rig.spool()
    entry = spooled(spool, raw)
    assert rig.receiver.prepare(spool, entry, spool.open(entry)) is not None  # noted only
    before = rig.records()
    rig.restart()
    assert rig.records() == before + 1
    (record,) = rig.indexed(uid)
    assert rig.receiver.recorded(record)


def test_an_upload_left_pending_by_a_crash_is_registered_again_never_sealed_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
):
    raw, uid = instance()
    spool = rig.spool()
    entry = spooled(spool, raw)
    sealed = rig.receiver.prepare(spool, entry, spool.open(entry))
    assert sealed is not None
    gateway: Any = rig.gateway

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("crash after the ledger write, before the record was held")

    monkeypatch.setattr(gateway, "_finish_upload", crash)
    with pytest.raises(RuntimeError):
        rig.receiver.register(sealed, "CT1")
    monkeypatch.undo()
    (noted,) = [stored.manifest_cid for stored in gateway.state.pending_uploads()]
    before = rig.records()
    rig.restart()  # the spool's replay comes before any reconciliation completes the upload
    assert rig.records() == before + 1
    assert rig.indexed(uid) == [noted]  # the record begun before the crash, not a second one
    assert gateway.recover_uploads() == 0  # nothing left pending to complete later
    assert rig.records() == before + 1


def test_an_entry_opens_only_for_the_gateway_identity_and_holds_no_plaintext(rig: Rig):
    raw, _uid = instance()
    spool = rig.spool()
    entry = spooled(spool, raw)
    path = spool.directory / f"{entry.name}.sealed"
    data = path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert raw[200:264] not in data
    assert b"CompressedSamples" not in data
    opened = io.BytesIO()
    open_envelope(io.BytesIO(data), opened, rig.receiver.identity.unwrap_keys)
    assert opened.getvalue().endswith(raw)
    with pytest.raises(NotARecipient):
        open_envelope(io.BytesIO(data), io.BytesIO(), Identity.generate("x").unwrap_keys)
    assert spool.open(entry).raw == raw
    assert spool.open(entry).calling == "CT1"
