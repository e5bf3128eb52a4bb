"""Objects without pixels through a real `scanseal serve`: the Storage SCP and STOW-RS seal,
register and index them like images, and the recipient opens them element for element."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from tests.dicom.scu import push, registered, same_instance
from tests.dicom.test_scp import gateway as gateway
from tests.dicom.test_scp import world as world
from tests.dicom.test_stow import stow

from gateway_harness import GatewayProcess
from scanseal.client import GatewayClient
from scanseal.dicom.index import DicomIndex
from scanseal.transfer import screen_verdict
from study_objects import mixed_study, write


def _indexed(gateway: GatewayProcess) -> dict[str, str]:
    index = DicomIndex.at(gateway.world.home / "gateway")
    try:
        return {i.sop_instance_uid: i.manifest_cid for i in index.instances()}
    finally:
        index.close()


def _opened_as_sent(gateway: GatewayProcess, paths: list[Path], records: dict[str, str], out: Path):
    with GatewayClient(gateway.url, gateway.world.people["lee"]) as lee:
        for path in paths:
            opened = lee.fetch(records[path.stem], out / path.name)
            same_instance(opened.path, path)
            verdict = screen_verdict(opened.manifest)
            assert verdict is not None
            pixels = pydicom.dcmread(path, stop_before_pixels=True).get("Rows") is not None
            assert (verdict.not_screened is None) == pixels


def test_the_scp_stores_every_object_of_a_mixed_study(gateway: GatewayProcess, tmp_path: Path):
    paths = write(mixed_study(2), tmp_path / "study")
    assert push(gateway.world.dicom_port, paths) == [0] * len(paths)
    registered(gateway.url)
    records = _indexed(gateway)
    _opened_as_sent(gateway, paths, records, tmp_path / "out")
    log = gateway.log.read_text()
    for path in paths[2:]:  # the objects without pixels: one INFO line each, not screened
        line = next(line for line in log.splitlines() if f"instance {path.stem} " in line)
        assert " INFO " in line
        message, fields = line.split(" via=", 1)  # the text log's fields follow the message
        assert message.endswith(f"record {records[path.stem]}, not screened: no pixels")
        assert fields.endswith(' screen="not screened"')


def _validates_as_a_stow_answer(answer: dict, stored: int, base: str) -> list[Dataset]:
    """PS3.18 10.5.3: a DICOM JSON data set (pydicom reads it back, VRs and values checked)
    whose ReferencedSOPSequence items hold the UIDs, a RetrieveURL and here the record."""
    assert all(len(tag) == 8 and tag == tag.upper() for tag in answer)
    dataset = Dataset.from_json(answer)
    items = list(dataset.ReferencedSOPSequence)
    assert len(items) == stored
    assert "FailedSOPSequence" not in dataset
    for item in items:
        assert item["ReferencedSOPClassUID"].VR == item["ReferencedSOPInstanceUID"].VR == "UI"
        assert item["RetrieveURL"].VR == "UR"
        creator = item[0x00090010]
        assert (creator.VR, creator.value) == ("LO", "SCANSEAL")
        record = item[0x00091001]
        assert record.VR == "UT"
        assert item.RetrieveURL == f"{base}/v1/records/{record.value}"
    return items


def test_stow_stores_objects_without_pixels_and_answers_their_records(
    gateway: GatewayProcess, tmp_path: Path
):
    paths = write(mixed_study(1), tmp_path / "study")
    study = pydicom.dcmread(paths[0]).StudyInstanceUID
    answer = stow(gateway, [p.read_bytes() for p in paths], study)
    assert answer.status_code == 200, answer.text
    items = _validates_as_a_stow_answer(answer.json(), len(paths), gateway.url)
    records = {str(i.ReferencedSOPInstanceUID): str(i[0x00091001].value) for i in items}
    assert records == {k: v for k, v in _indexed(gateway).items() if k in records}
    assert list(records) == [p.stem for p in paths]
    _opened_as_sent(gateway, paths, records, tmp_path / "out")
