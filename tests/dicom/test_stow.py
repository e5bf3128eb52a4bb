"""STOW-RS on a real `scanseal serve`: the same sealing and registration path as C-STORE."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pydicom
from pydicom.uid import generate_uid
from tests.dicom.scu import assert_verdicts_logged, count, same_instance
from tests.dicom.test_scp import FILES
from tests.dicom.test_scp import gateway as gateway
from tests.dicom.test_scp import world as world

from gateway_harness import GatewayProcess, World
from scanseal.client import GatewayClient
from scanseal.dicom.index import DicomIndex
from tests_detect_support import flagged_dicom


def multipart(parts: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(gateway: GatewayProcess, parts: list[bytes], study: str | None = None) -> httpx.Response:
    body, content_type = multipart(parts)
    path = "/dicom-web/studies" + (f"/{study}" if study else "")
    return httpx.post(gateway.url + path, content=body, headers={"Content-Type": content_type})


def records(world: World) -> int:
    return count(world.home / "gateway" / "gateway.sqlite3", "records")


def fresh(path: Path, tmp_path: Path) -> Path:
    """A copy of a corpus file as a new instance (so earlier tests' records do not count)."""
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def test_stow_stores_and_the_recipient_opens(gateway: GatewayProcess, tmp_path: Path):
    files = [fresh(p, tmp_path) for p in FILES]
    answer = stow(gateway, [p.read_bytes() for p in files])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/dicom+json")
    referenced = answer.json()["00081199"]["Value"]
    uids = [item["00081155"]["Value"][0] for item in referenced]
    assert uids == [pydicom.dcmread(p).SOPInstanceUID for p in files]
    index = DicomIndex.at(gateway.world.home / "gateway")
    rows = {i.sop_instance_uid: i for i in index.instances()}
    index.close()
    with GatewayClient(gateway.url, gateway.world.people["lee"]) as lee:
        for path in files:
            opened = lee.fetch(rows[path.stem].manifest_cid, tmp_path / "out" / path.name)
            same_instance(opened.path, path)


def test_stow_reports_partial_failure_truthfully(gateway: GatewayProcess, tmp_path: Path):
    good = fresh(FILES[0], tmp_path)
    before = records(gateway.world)
    answer = stow(gateway, [good.read_bytes(), b"\x00" * 128 + b"DICM" + b"\xff" * 300])
    assert answer.status_code == 202
    result = answer.json()
    assert len(result["00081199"]["Value"]) == 1
    (failed,) = result["00081198"]["Value"]
    assert failed["00081197"]["Value"][0] != 0
    assert records(gateway.world) == before + 1


def test_stow_refusals(gateway: GatewayProcess, tmp_path: Path):
    before = records(gateway.world)
    other_study = stow(gateway, [fresh(FILES[0], tmp_path).read_bytes()], study="1.2.3")
    assert other_study.status_code == 409
    assert other_study.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]
    wrong_type = httpx.post(
        gateway.url + "/dicom-web/studies", content=b"x", headers={"Content-Type": "image/png"}
    )
    assert wrong_type.status_code == 415
    unclosed = httpx.post(
        gateway.url + "/dicom-web/studies",
        content=b"--b\r\n\r\nabc",
        headers={"Content-Type": "multipart/related; boundary=b"},
    )
    assert unclosed.status_code == 400
    assert records(gateway.world) == before


def test_an_instance_without_sop_class_is_a_failed_instance(
    gateway: GatewayProcess, tmp_path: Path
):
    ds = pydicom.dcmread(fresh(FILES[0], tmp_path))
    del ds.SOPClassUID  # the file meta still names one: the part parses, then is refused
    out = tmp_path / "no-sop-class.dcm"
    ds.save_as(out, enforce_file_format=True)
    before = records(gateway.world)
    answer = stow(gateway, [out.read_bytes()])
    assert answer.status_code == 409
    (failed,) = answer.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"][0] != 0
    assert "00081150" not in failed
    assert failed["00081155"]["Value"] == [ds.SOPInstanceUID]
    assert records(gateway.world) == before


def test_stow_logs_each_instance_with_its_signed_verdict(gateway: GatewayProcess, tmp_path: Path):
    """A flagged part is stored and logged as a warning naming its SOP Instance UID and record;
    a clean one stays an INFO line."""
    flagged, clean = flagged_dicom(tmp_path / "stow-flagged.dcm"), fresh(FILES[0], tmp_path)
    answer = stow(gateway, [flagged.read_bytes(), clean.read_bytes()])
    assert answer.status_code == 200, answer.text
    index = DicomIndex.at(gateway.world.home / "gateway")
    rows = {i.sop_instance_uid: i.manifest_cid for i in index.instances()}
    index.close()
    assert_verdicts_logged(gateway.log, rows, flagged, clean, "STOW-RS")
