"""`scanseal fetch --to-pacs`: a pushed study is fetched by its recipient and C-STOREd into a
PACS (a pynetdicom SCP child process); what arrives equals the original by pixel digest and
element values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from tests.dicom.scu import push, registered, same_instance
from tests.dicom.test_scp import FILES
from tests.dicom.test_scp import gateway as gateway
from tests.dicom.test_scp import world as world

from gateway_harness import GatewayProcess, free_port
from scanseal.dicom.forward import Destination
from scanseal.dicom.index import DicomIndex
from scanseal.errors import InvalidInput

HERE = Path(__file__).parent


@pytest.fixture
def pacs(tmp_path: Path):
    port = free_port()
    inbox = tmp_path / "pacs"
    inbox.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "pacs_scp.py"), str(port), str(inbox)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    yield port, inbox
    process.terminate()
    process.wait(timeout=10)


def test_fetch_to_pacs_delivers_the_original(gateway: GatewayProcess, pacs, tmp_path: Path):
    port, inbox = pacs
    world = gateway.world
    assert push(world.dicom_port, FILES) == [0, 0]
    registered(gateway.url)
    index = DicomIndex.at(world.home / "gateway")
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in FILES}
    cids = [i.manifest_cid for i in index.instances() if i.sop_instance_uid in uids]
    index.close()
    out = tmp_path / "opened"
    out.mkdir()
    command = [sys.executable, "-m", "scanseal", "fetch", *cids, "-o", str(out),
               "--as", "lee", "--gateway", gateway.url,
               "--to-pacs", f"PACS@127.0.0.1:{port}"]  # fmt: skip
    result = subprocess.run(command, env=world.env(), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "forwarded 2 instance(s)" in result.stdout
    for uid, original in uids.items():
        same_instance(inbox / f"{uid}.dcm", original)


def test_unreachable_pacs_is_one_error_line(gateway: GatewayProcess, tmp_path: Path):
    world = gateway.world
    assert push(world.dicom_port, FILES[:1]) == [0]
    registered(gateway.url)
    index = DicomIndex.at(world.home / "gateway")
    cid = index.instances()[0].manifest_cid
    index.close()
    dead = f"PACS@127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "scanseal", "fetch", cid, "-o", str(tmp_path / "x.dcm"),
               "--as", "lee", "--gateway", gateway.url, "--to-pacs", dead]  # fmt: skip
    result = subprocess.run(command, env=world.env(), capture_output=True, text=True, check=False)
    assert result.returncode == 5
    assert "Traceback" not in result.stderr
    assert "refused or did not answer" in result.stderr


@pytest.mark.parametrize(
    "text", ["PACS", "PACS@host", "@h:1", "A@h:99999", "WAYTOOLONGAETITLE1@h:1"]
)
def test_destination_syntax(text: str) -> None:
    with pytest.raises(InvalidInput):
        Destination.parse(text)
