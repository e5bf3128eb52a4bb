"""Orthanc and dcmtk against the gateway's SCP; run only inside the network namespace that
test_engines.py creates (Orthanc and dcmtk listen on all interfaces).

The flow of the issue: Orthanc pushes a study to department A's gateway with
/modalities/X/store, dcmtk's dcmsend pushes another, the recipient fetches the records and
forwards them into a second Orthanc; compared there by pixel digest and element values. The
study also travels to department B: a second `scanseal serve` with its own state, identity and
[forward] agent, on the same chain as A (anvil: two processes cannot share the embedded chain,
whose state each process holds in memory), forwards every record granted to B's identity into
B's own Orthanc. (De-identification beside Orthanc's /anonymize is test_deid_orthanc.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from tests.dicom.engines import Orthanc
from tests.dicom.scu import count, registered, same_instance
from tests.dicom.test_scp import gateway as gateway

from devnode import ANVIL_FUNDER_KEY, anvil_binary, running_anvil
from gateway_harness import PASSPHRASE, GatewayProcess, World, free_port, make_world
from scanseal.crypto.identity import Keystore
from scanseal.dicom.agent import FORWARDED, ForwardState
from scanseal.dicom.index import DicomIndex
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.transfer.records import cid_bytes
from study_objects import mixed_study, write

pytestmark = pytest.mark.skipif(
    os.environ.get("SCANSEAL_IN_NETNS") != "1", reason="runs inside test_engines' namespace"
)
STUDY = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small_RLE.dcm")]
OTHER = [Path(str(get_testdata_file(n))) for n in ("JPEG2000.dcm", "SC_rgb_rle.dcm")]


@pytest.fixture(scope="module")
def anvil() -> Iterator[str]:
    binary = anvil_binary()
    if binary is None:
        pytest.fail("anvil is not installed: run `make install-contracts`")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCANSEAL_LEDGER_FUNDER_KEY", ANVIL_FUNDER_KEY)  # gas for new accounts
        with running_anvil(binary) as url:
            yield url


@pytest.fixture(scope="module")
def dept_b_world(anvil: str, tmp_path_factory: pytest.TempPathFactory) -> World:
    """Department B: its own home, gateway identity and the recipient identity ``radb``."""
    return make_world(
        tmp_path_factory.mktemp("dept-b"), ["radb"],
        ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil}"',
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(anvil: str, dept_b_world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """Department A: pushed studies are sealed for its clinician lee and for department B."""
    root = tmp_path_factory.mktemp("dept-a")
    port = free_port()
    cards = root / "home" / "members"
    radb = dept_b_world.cards["radb"]
    extra = (
        f'\n[dicom]\nenabled = true\nstow = true\nae_title = "SCANSEAL"\nport = {port}\n'
        f'recipients = ["{cards / "lee.card.json"}", "{radb}"]\n'
    )
    world = make_world(root, ["lee"], extra=extra,
                       ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil}"')  # fmt: skip
    (cards / radb.name).write_bytes(radb.read_bytes())  # A enrolls B's identity
    world.dicom_port = port  # type: ignore[attr-defined]
    return world


@pytest.fixture(scope="module")
def orthancs(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("orthanc")
    scp = ["SCANSEAL", "127.0.0.1", gateway.world.dicom_port]  # type: ignore[attr-defined]
    web = {"scanseal": [f"{gateway.url}/dicom-web/"]}
    source = Orthanc(root / "source", "SOURCE", {"scanseal": scp}, web).start()
    target = Orthanc(root / "target", "TARGET", {}).start()
    dept_b = Orthanc(root / "dept-b", "DEPTB", {}).start()
    yield source, target, dept_b
    for orthanc in (source, target, dept_b):
        orthanc.stop()


@pytest.fixture(scope="module")
def dept_b(gateway: GatewayProcess, dept_b_world: World, orthancs) -> Iterator[GatewayProcess]:
    """B's `scanseal serve` on A's contract (A's owner makes B's gateway an admin), with a
    [forward] agent that watches A's inbox as radb and feeds B's Orthanc."""
    contract = str(gateway_health(gateway)["contract"])
    owner = Keystore(gateway.world.home / "keys").load("gateway", PASSPHRASE)
    b_address = dept_b_world.people["gateway"].address
    with Ledger.open(LedgerConfig(backend="jsonrpc", url=_anvil_url(dept_b_world),
                                  contract=contract, funder_key=ANVIL_FUNDER_KEY,
                                  state_dir=dept_b_world.home / "owner")) as ledger:  # fmt: skip
        ledger.set_admin(owner.account, b_address)
    config = dept_b_world.config
    text = config.read_text("utf-8").replace(
        'backend = "jsonrpc"', f'backend = "jsonrpc"\ncontract = "{contract}"'
    )
    text += (
        f'\n[forward]\ngateway = "{gateway.url}"\nidentity = "radb"\n'
        f'destination = "DEPTB@127.0.0.1:{orthancs[2].dicom_port}"\ncalling_ae = "DEPTB_FWD"\n'
        f'poll_seconds = 0.5\nretry_seconds = 1\nstate_dir = "{dept_b_world.home / "forward"}"\n'
    )
    config.write_text(text, "utf-8")
    process = GatewayProcess(dept_b_world).start()
    yield process
    process.stop()


def gateway_health(gateway: GatewayProcess) -> dict[str, object]:
    import httpx

    return dict(httpx.get(f"{gateway.url}/v1/health", timeout=10).json())


def _anvil_url(world: World) -> str:
    line = next(ln for ln in world.config.read_text("utf-8").splitlines() if ln.startswith("url"))
    return line.split('"')[1]


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def records_for(gateway: GatewayProcess, paths: list[Path]) -> list[str]:
    """The records of ``paths``, once the gateway registered everything it acknowledged."""
    registered(gateway.url)
    index = DicomIndex.at(gateway.world.home / "gateway")
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
    source, target, _dept_b = orthancs
    ids = [source.upload(p) for p in STUDY]
    answer = source.post("/modalities/scanseal/store", {"Resources": ids, "Synchronous": True})
    assert answer.status_code == 200, answer.text
    forward(gateway, records_for(gateway, STUDY), target, tmp_path / "opened")
    for path in STUDY:
        arrived = tmp_path / f"{sop_uid(path)}.dcm"
        arrived.write_bytes(target.file(target.find(sop_uid(path))))
        same_instance(arrived, path)


def test_dcmsend_pushes_a_study_that_arrives_unchanged(gateway, orthancs, tmp_path: Path):
    _source, target, _dept_b = orthancs
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
    forward(gateway, records_for(gateway, OTHER), target, tmp_path / "opened")
    for path in OTHER:
        arrived = tmp_path / f"{sop_uid(path)}.dcm"
        arrived.write_bytes(target.file(target.find(sop_uid(path))))
        same_instance(arrived, path)


def test_orthanc_sending_a_non_image_is_refused_and_nothing_registered(
    gateway, orthancs, tmp_path: Path
):
    source, _target, _dept_b = orthancs
    ds = pydicom.dcmread(STUDY[0])
    del ds.PixelData  # a CT image whose pixels are missing: ingest refuses it
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


def test_orthanc_stows_an_instance_through_dicomweb(gateway, orthancs, tmp_path: Path):
    source, _target, _dept_b = orthancs
    ds = pydicom.dcmread(STUDY[0])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "stow.dcm"
    ds.save_as(path, enforce_file_format=True)
    instance = source.upload(path)
    answer = source.post("/dicom-web/servers/scanseal/stow", {"Resources": [instance]})
    assert answer.status_code == 200, answer.text
    (cid,) = records_for(gateway, [path])
    out = tmp_path / "opened"
    forward_target = orthancs[1]
    forward(gateway, [cid], forward_target, out)
    arrived = tmp_path / "arrived.dcm"
    arrived.write_bytes(forward_target.file(forward_target.find(ds.SOPInstanceUID)))
    same_instance(arrived, path)


def forwarded_to_b(dept_b: GatewayProcess, cids: list[str]) -> None:
    """Wait until B's agent has forwarded every one of ``cids`` (fails with B's log)."""
    state = ForwardState(dept_b.world.home / "forward" / "forward.sqlite3")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = [state.item(cid) for cid in cids]
            if all(i is not None and i.status == FORWARDED for i in items):
                return
            time.sleep(0.25)
    finally:
        state.close()
    pytest.fail(dept_b.log.read_text()[-4000:])


def test_the_study_travels_to_department_b_and_into_its_orthanc(
    gateway: GatewayProcess, dept_b: GatewayProcess, orthancs, tmp_path: Path
):
    source, _target, b_orthanc = orthancs
    sent = []
    for path in STUDY:  # under new UIDs, so only this push can make them arrive at B
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        copy = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(copy, enforce_file_format=True)
        sent.append(copy)
    ids = [source.upload(p) for p in sent]
    answer = source.post("/modalities/scanseal/store", {"Resources": ids, "Synchronous": True})
    assert answer.status_code == 200, answer.text
    cids = records_for(gateway, sent)
    forwarded_to_b(dept_b, cids)
    for path in sent:
        arrived = tmp_path / f"arrived-{path.name}"
        arrived.write_bytes(b_orthanc.file(b_orthanc.find(sop_uid(path))))
        same_instance(arrived, path)
    log = dept_b.log.read_text()
    assert all(f"record {cid} forwarded to DEPTB@" in log for cid in cids)
    # A fetch by B's identity is logged on the shared chain; B's gateway sees the same record.
    with Ledger.open(LedgerConfig(backend="jsonrpc", url=_anvil_url(dept_b.world),
                                  contract=str(gateway_health(dept_b)["contract"]),
                                  state_dir=tmp_path / "reader")) as ledger:  # fmt: skip
        trail = ledger.audit_trail(cid_bytes(cids[0]))
    radb = dept_b.world.people["radb"].address
    assert any(e.action == "access" and e.subject == radb and e.allowed for e in trail)


def test_mixed_studies_from_dcmsend_and_orthanc_arrive_complete_through_the_agent(
    gateway: GatewayProcess, orthancs, tmp_path: Path, request: pytest.FixtureRequest
):
    """CT images, an RT plan, two SRs, a key-object selection, a presentation state and a PDF:
    one study pushed by dcmsend, one by Orthanc; every object reaches B's Orthanc through B's
    agent, element for element. (B's gateway starts after the pushes when this test runs
    alone: making it an admin signs with A's account from this process, which A's gateway's
    next transaction would meet as a nonce it already counted.)"""
    source, _target, b_orthanc = orthancs
    by_dcmsend = write(mixed_study(2), tmp_path / "dcmsend")
    command = ["dcmsend", "-dn", "-aet", "CT3", "-aec", "SCANSEAL", "127.0.0.1",
               str(gateway.world.dicom_port), *map(str, by_dcmsend)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    by_orthanc = write(mixed_study(2), tmp_path / "orthanc")
    ids = [source.upload(p) for p in by_orthanc]
    answer = source.post("/modalities/scanseal/store", {"Resources": ids, "Synchronous": True})
    assert answer.status_code == 200, answer.text
    sent = by_dcmsend + by_orthanc
    registered(gateway.url)  # Success meant spooled: wait until every instance is registered
    index = DicomIndex.at(gateway.world.home / "gateway")
    held = {i.sop_instance_uid for i in index.instances()}
    index.close()
    missing = [(p.parent.name, pydicom.dcmread(p).Modality) for p in sent if p.stem not in held]
    assert not missing, gateway.log.read_text()[-4000:]  # dcmsend exits 0 on a refusal
    forwarded_to_b(request.getfixturevalue("dept_b"), records_for(gateway, sent))
    for path in sent:
        arrived = tmp_path / f"arrived-{path.name}"
        arrived.write_bytes(b_orthanc.file(b_orthanc.find(sop_uid(path))))
        same_instance(arrived, path)
