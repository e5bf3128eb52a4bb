"""Orthanc and dcmtk against the gateway's SCP; run only inside the network namespace that
test_engines.py creates (Orthanc and dcmtk listen on all interfaces).

The flow of the issue: Orthanc pushes a study to the gateway with /modalities/X/store, dcmtk's
dcmsend pushes another, the recipient fetches the records and forwards them into a second
Orthanc; compared there by pixel digest and element values. Our de-identification is compared
with Orthanc's /anonymize.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from tests.dicom.engines import Orthanc
from tests.dicom.scu import count, same_instance
from tests.dicom.test_scp import gateway as gateway
from tests.dicom.test_scp import world as world

from gateway_harness import GatewayProcess, World
from scanseal.dicom import DeidKey, deidentify
from scanseal.dicom.index import DicomIndex

pytestmark = pytest.mark.skipif(
    os.environ.get("SCANSEAL_IN_NETNS") != "1", reason="runs inside test_engines' namespace"
)
STUDY = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small_RLE.dcm")]
OTHER = [Path(str(get_testdata_file(n))) for n in ("JPEG2000.dcm", "SC_rgb_rle.dcm")]


@pytest.fixture(scope="module")
def orthancs(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("orthanc")
    scp = ["SCANSEAL", "127.0.0.1", gateway.world.dicom_port]  # type: ignore[attr-defined]
    web = {"scanseal": [f"{gateway.url}/dicom-web/"]}
    source = Orthanc(root / "source", "SOURCE", {"scanseal": scp}, web).start()
    target = Orthanc(root / "target", "TARGET", {}).start()
    yield source, target
    source.stop()
    target.stop()


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def records_for(world: World, paths: list[Path]) -> list[str]:
    index = DicomIndex.at(world.home / "gateway")
    by_uid = {i.sop_instance_uid: i.manifest_cid for i in index.instances()}
    index.close()
    return [by_uid[sop_uid(p)] for p in paths]


def forward(gateway: GatewayProcess, cids: list[str], target: Orthanc, out: Path) -> None:
    out.mkdir()
    command = [sys.executable, "-m", "scanseal", "fetch", *cids, "-o", str(out), "--as", "lee",
               "--gateway", gateway.url,
               "--to-pacs", f"TARGET@127.0.0.1:{target.dicom_port}"]  # fmt: skip
    result = subprocess.run(
        command, env=gateway.world.env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_orthanc_pushes_a_study_that_arrives_unchanged(gateway, orthancs, tmp_path: Path):
    source, target = orthancs
    ids = [source.upload(p) for p in STUDY]
    answer = source.post("/modalities/scanseal/store", {"Resources": ids, "Synchronous": True})
    assert answer.status_code == 200, answer.text
    forward(gateway, records_for(gateway.world, STUDY), target, tmp_path / "opened")
    for path in STUDY:
        arrived = tmp_path / f"{sop_uid(path)}.dcm"
        arrived.write_bytes(target.file(target.find(sop_uid(path))))
        same_instance(arrived, path)


def test_dcmsend_pushes_a_study_that_arrives_unchanged(gateway, orthancs, tmp_path: Path):
    _source, target = orthancs
    port = str(gateway.world.dicom_port)
    command = [
        "dcmsend",
        "-dn",
        "-aet",
        "CT2",
        "-aec",
        "SCANSEAL",
        "127.0.0.1",
        port,
        *map(str, OTHER),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    forward(gateway, records_for(gateway.world, OTHER), target, tmp_path / "opened")
    for path in OTHER:
        arrived = tmp_path / f"{sop_uid(path)}.dcm"
        arrived.write_bytes(target.file(target.find(sop_uid(path))))
        same_instance(arrived, path)


def test_orthanc_sending_a_non_image_is_refused_and_nothing_registered(
    gateway, orthancs, tmp_path: Path
):
    source, _target = orthancs
    ds = pydicom.dcmread(STUDY[0])
    del ds.PixelData  # a CT instance without pixels: the screen refuses it
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "no-pixels.dcm"
    ds.save_as(path, enforce_file_format=True)
    before = count(gateway.world.home / "gateway" / "gateway.sqlite3", "records")
    instance = source.upload(path)
    answer = source.post(
        "/modalities/scanseal/store", {"Resources": [instance], "Synchronous": True}
    )
    assert answer.status_code != 200  # Orthanc saw the failure status
    assert count(gateway.world.home / "gateway" / "gateway.sqlite3", "records") == before


def test_deidentification_is_at_least_as_strict_as_orthancs(orthancs, tmp_path: Path):
    source, _target = orthancs
    for path in STUDY:
        instance = source.upload(path)
        answer = source.post(f"/instances/{instance}/anonymize", {"Force": True})
        assert answer.status_code == 200, answer.text
        theirs_path = tmp_path / "theirs.dcm"
        theirs_path.write_bytes(answer.content)
        theirs = pydicom.dcmread(theirs_path)
        original = pydicom.dcmread(path)
        ours = deidentify(original, DeidKey.generate()).dataset
        assert ours.PatientIdentityRemoved == theirs.PatientIdentityRemoved == "YES"
        for element in original:
            if (
                element.keyword in ("PixelData", "PatientIdentityRemoved")
                or element.tag.element == 0
            ):
                continue
            if element.tag not in theirs or theirs[element.tag].value != element.value:
                # Orthanc removed, emptied or replaced it: we did one of those too
                assert element.tag not in ours or ours[element.tag].value != element.value, element


def test_orthanc_stows_an_instance_through_dicomweb(gateway, orthancs, tmp_path: Path):
    source, _target = orthancs
    ds = pydicom.dcmread(STUDY[0])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "stow.dcm"
    ds.save_as(path, enforce_file_format=True)
    instance = source.upload(path)
    answer = source.post("/dicom-web/servers/scanseal/stow", {"Resources": [instance]})
    assert answer.status_code == 200, answer.text
    (cid,) = records_for(gateway.world, [path])
    out = tmp_path / "opened"
    forward_target = orthancs[1]
    forward(gateway, [cid], forward_target, out)
    arrived = tmp_path / "arrived.dcm"
    arrived.write_bytes(forward_target.file(forward_target.find(ds.SOPInstanceUID)))
    same_instance(arrived, path)
