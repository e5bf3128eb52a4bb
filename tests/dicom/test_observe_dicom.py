"""Logs, health and metrics of the DICOM side of real ``scanseal serve`` child processes.

Department A runs the Storage SCP and STOW-RS with ``--log-format json``: each C-STORE and
STOW-RS instance is one JSON line with its SOP Instance UID, status, record and screen verdict;
``/metrics`` counts them by way in and status with their durations; ``/v1/health`` reports the
SCP listening. Department B's ``serve`` runs the forwarding agent ([forward]) into a stand-in
PACS: its health shows the agent, its metrics what the agent forwarded; with the PACS stopped,
B's health answers 503 naming the agent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file
from tests.dicom.scu import push, registered
from tests.dicom.test_agent import Pacs
from tests.dicom.test_stow import fresh, stow

from gateway_harness import GatewayProcess, World, free_port, make_world

CT = Path(str(get_testdata_file("CT_small.dcm")))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Department A: the SCP and STOW-RS, for ito by default and for eve from WARD_E."""
    root, port = tmp_path_factory.mktemp("observe-dicom"), free_port()
    card = {who: root / "home" / "members" / f"{who}.card.json" for who in ("ito", "eve")}
    dicom = f'enabled = true\nstow = true\nport = {port}\nrecipients = ["{card["ito"]}"]\n'
    extra = f'\n[dicom]\n{dicom}[dicom.routes]\nWARD_E = ["{card["eve"]}"]\n'
    world = make_world(root, ["ito", "eve"], extra=extra)
    world.dicom_port = port  # type: ignore[attr-defined]
    return world


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world, args=["--log-format", "json"]).start()
    yield process
    process.stop()


def uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def samples(url: str) -> dict[str, float]:
    """Every sample of /metrics, by its name and labels as written."""
    found = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def instance_lines(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "scanseal.dicom.scp"]


def _about(lines: list[dict[str, Any]], uid: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["fields"]["sop_instance_uid"] == uid]


def test_each_instance_is_one_json_line_and_counted(gateway: GatewayProcess, tmp_path: Path):
    port = gateway.world.dicom_port  # type: ignore[attr-defined]
    stored, streamed = fresh(CT, tmp_path), fresh(CT, tmp_path)
    assert push(port, [stored], calling="CT1") == [0]
    wrong = pydicom.dcmread(fresh(CT, tmp_path), stop_before_pixels=True)
    del wrong.PhotometricInterpretation  # no pixels, no photometric interpretation: no image
    (refusal,) = push(port, [wrong], calling="CT1")
    assert refusal in (0xC000, 0xC210)
    answer = stow(gateway, [streamed.read_bytes(), b"not dicom"])
    assert answer.status_code == 202
    registered(gateway.url)

    lines = instance_lines(gateway.log)
    (cstore,) = _about(lines, uid_of(stored))
    fields = cstore["fields"]
    assert fields["via"] == "C-STORE"
    assert fields["calling_ae"] == "CT1"
    assert fields["status"] == "0000"
    assert fields["record"].startswith("baf")
    assert fields["screen"] in ("clean", "flagged")
    assert f"stored as record {fields['record']}" in cstore["msg"]
    (refused,) = _about(lines, str(wrong.SOPInstanceUID))
    assert refused["level"] == "warning"
    assert refused["fields"]["status"] == f"{refusal:04X}"
    assert refused["fields"]["reason"]
    (streamed_line,) = _about(lines, uid_of(streamed))
    assert streamed_line["fields"]["via"] == "STOW-RS"
    assert streamed_line["fields"]["status"] == "0000"
    stow_fields = [line["fields"] for line in lines if line["fields"]["via"] == "STOW-RS"]
    garbage = [fields for fields in stow_fields if fields["status"] != "0000"]
    assert garbage
    assert garbage[0]["sop_instance_uid"] is None  # nothing could be read of it

    values = samples(gateway.url)
    assert values['scanseal_scp_instances_total{status="0000",via="C-STORE"}'] >= 1
    assert values[f'scanseal_scp_instances_total{{status="{refusal:04X}",via="C-STORE"}}'] == 1
    assert values['scanseal_scp_instances_total{status="0000",via="STOW-RS"}'] >= 1
    assert values['scanseal_scp_instances_total{status="C210",via="STOW-RS"}'] == 1
    assert values['scanseal_scp_instance_seconds_count{via="C-STORE"}'] >= 2
    assert values['scanseal_scp_instance_seconds_sum{via="C-STORE"}'] > 0


def test_health_reports_the_scp(gateway: GatewayProcess):
    health = httpx.get(f"{gateway.url}/v1/health").json()
    assert health["status"] == "ok"
    scp = health["scp"]
    assert scp["ok"] is True
    assert scp["port"] == gateway.world.dicom_port  # type: ignore[attr-defined]


def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_the_agent_in_serve_is_watched(gateway: GatewayProcess, tmp_path: Path):
    """B forwards eve's records into its PACS; with the PACS stopped, B's health fails."""
    world = gateway.world
    port = world.dicom_port  # type: ignore[attr-defined]
    b_world = make_world(tmp_path / "dept-b", [])
    (b_world.home / "keys" / "eve.json").write_bytes(
        (world.home / "keys" / "eve.json").read_bytes()
    )
    pacs = Pacs(free_port(), tmp_path / "pacs")
    with b_world.config.open("a", encoding="utf-8") as config:
        config.write(
            f'\n[forward]\ngateway = "{gateway.url}"\nidentity = "eve"\npoll_seconds = 0.2\n'
            f'destination = "PACS@127.0.0.1:{pacs.port}"\nretry_seconds = 30\n'
        )
    dept_b = GatewayProcess(b_world, args=["--log-format", "json"]).start()
    try:
        assert push(port, [fresh(CT, tmp_path)], calling="WARD_E") == [0]
        assert _until(lambda: list(pacs.inbox.glob("*.dcm")))
        values = _until(
            lambda: (v := samples(dept_b.url))["scanseal_agent_forwarded_total"] >= 1 and v
        )
        assert values["scanseal_agent_failed_total"] == 0
        assert values['scanseal_agent_records{status="forwarded"}'] == 1
        health = httpx.get(f"{dept_b.url}/v1/health").json()
        assert health["agent"]["ok"] is True
        assert health["agent"]["destination_up"] is True

        pacs.stop()
        assert push(port, [fresh(CT, tmp_path)], calling="WARD_E") == [0]
        answer = _until(
            lambda: (a := httpx.get(f"{dept_b.url}/v1/health")).status_code == 503 and a
        )
        assert answer
        health = answer.json()
        assert health["status"] == "failing"
        assert health["failing"] == ["agent"]
        agent = health["agent"]
        assert agent["destination_up"] is False
        assert agent["running"] is True
        assert "is down" in agent["reason"]
        assert samples(dept_b.url)["scanseal_agent_failed_total"] >= 1
    finally:
        dept_b.stop()
        if pacs.process.poll() is None:
            pacs.stop()
