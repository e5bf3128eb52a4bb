"""The Storage SCP inside a real `scanseal serve`, pushed to by pynetdicom as a modality, with
``acknowledge = "registered"``: each C-STORE answered with that instance's own registration
status (the default, store-and-forward, is tests/dicom/test_spool.py's)."""

from __future__ import annotations

import socket
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from tests.dicom.scu import assert_verdicts_logged, count, push, same_instance

from cli.crafted import crafted_rle
from gateway_harness import GatewayProcess, World, free_port, make_world
from scanseal.client import GatewayClient
from scanseal.dicom.index import DicomIndex
from tests_detect_support import flagged_dicom

FILES = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small_RLE.dcm")]
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("scp")
    port = free_port()
    cards = root / "home" / "members"
    extra = (
        f'\n[dicom]\nenabled = true\nstow = true\nae_title = "SCANSEAL"\nport = {port}\n'
        f'recipients = ["{cards / "lee.card.json"}"]\nacknowledge = "registered"\n'
        f'[dicom.routes]\nCARDIO = ["{cards / "novak.card.json"}"]\n'
    )
    world = make_world(root, ["lee", "novak"], extra=extra)
    world.dicom_port = port  # type: ignore[attr-defined]
    return world


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world).start()
    yield process
    process.stop()


def records(world: World) -> int:
    return count(world.home / "gateway" / "gateway.sqlite3", "records")


def indexed(world: World) -> DicomIndex:
    return DicomIndex.at(world.home / "gateway")


def test_push_seals_registers_and_recipient_opens(gateway: GatewayProcess, tmp_path: Path):
    world = gateway.world
    assert push(world.dicom_port, FILES) == [0, 0]
    index = indexed(world)
    for path in FILES:
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        study = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
        (row,) = [i for i in index.instances(study) if i.sop_instance_uid == uid]
        with GatewayClient(gateway.url, world.people["lee"]) as lee:
            opened = lee.fetch(row.manifest_cid, tmp_path / f"{uid}.dcm")
        same_instance(opened.path, path)
        assert opened.manifest.uploader.address == world.people["gateway"].address
    index.close()


def test_route_by_calling_ae(gateway: GatewayProcess, tmp_path: Path):
    world = gateway.world
    ds = pydicom.dcmread(FILES[0])
    ds.SOPInstanceUID = generate_uid()
    assert push(world.dicom_port, [ds], calling="CARDIO") == [0]
    index = indexed(world)
    (row,) = [i for i in index.instances() if i.sop_instance_uid == ds.SOPInstanceUID]
    index.close()
    with GatewayClient(gateway.url, world.people["novak"]) as novak:
        novak.fetch(row.manifest_cid, tmp_path / "x.dcm")
    with GatewayClient(gateway.url, world.people["lee"]) as lee, pytest.raises(Exception):  # noqa: B017, PT011
        lee.fetch(row.manifest_cid, tmp_path / "y.dcm")


def _garbage(tmp_path: Path) -> Path:
    """A Part 10 preamble and meta header announcing CT, followed by bytes that are no data set."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows = 8
    ds.Columns = 8  # no Pixel Data, no photometric interpretation: not an image
    path = tmp_path / "garbage.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_bad_instances_get_failure_statuses_and_leave_nothing(
    gateway: GatewayProcess, tmp_path: Path
):
    world = gateway.world
    before = records(world)
    not_an_image = _garbage(tmp_path)
    statuses = push(world.dicom_port, [not_an_image])
    assert statuses[0] in (0xC000, 0xC210)
    # A stream that is not DICOM at all, then an association aborted half way.
    with socket.create_connection(("127.0.0.1", world.dicom_port)) as raw:
        raw.sendall(b"\x01\x00\x00\x00\x00\x10" + b"\xff" * 64)
    ae = AE(ae_title="CT1")
    ae.add_requested_context(CT_STORAGE, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", world.dicom_port, ae_title="SCANSEAL")
    assert assoc.is_established
    assoc.abort()
    assert records(world) == before
    assert all(i.sop_instance_uid != pydicom.dcmread(not_an_image).SOPInstanceUID
               for i in indexed(world).instances())  # fmt: skip
    ds = pydicom.dcmread(FILES[0])
    ds.SOPInstanceUID = generate_uid()
    assert push(world.dicom_port, [ds]) == [0]  # the SCP is still serving
    assert records(world) == before + 1


def test_an_instance_that_crashes_the_rle_decoder_is_refused_and_the_scp_serves_on(
    gateway: GatewayProcess, tmp_path: Path
):
    world = gateway.world
    before = records(world)
    assert push(world.dicom_port, [crafted_rle(tmp_path / "crafted.dcm")]) == [0xC210]
    assert records(world) == before
    assert "panicked" not in gateway.log.read_text()
    ds = pydicom.dcmread(FILES[0])
    ds.SOPInstanceUID = generate_uid()
    assert push(world.dicom_port, [ds]) == [0]


def test_each_instance_is_logged_with_its_signed_verdict(gateway: GatewayProcess, tmp_path: Path):
    """C-STORE of a flagged and a clean instance: both stored (0000); the flagged one logs a
    warning naming its SOP Instance UID and record, the clean one an INFO line."""
    world = gateway.world
    flagged = flagged_dicom(tmp_path / "scp-flagged.dcm")
    clean = tmp_path / "clean.dcm"
    ds = pydicom.dcmread(FILES[1])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(clean, enforce_file_format=True)
    assert push(world.dicom_port, [flagged, clean], calling="CARDIO") == [0, 0]
    index = indexed(world)
    rows = {i.sop_instance_uid: i.manifest_cid for i in index.instances()}
    index.close()
    assert_verdicts_logged(gateway.log, rows, flagged, clean, "CARDIO")


def test_unknown_sop_class_is_rejected_at_negotiation(gateway: GatewayProcess):
    ae = AE(ae_title="CT1")
    ae.add_requested_context("1.2.826.0.1.3680043.2.1143.999.1", [ExplicitVRLittleEndian])
    ae.add_requested_context(CT_STORAGE, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", gateway.world.dicom_port, ae_title="SCANSEAL")
    assert assoc.is_established
    rejected = [c.abstract_syntax for c in assoc.rejected_contexts]
    assoc.release()
    assert rejected == ["1.2.826.0.1.3680043.2.1143.999.1"]
