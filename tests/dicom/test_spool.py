"""Store-and-forward (``[dicom] acknowledge = "durable"``, the default) in a real `scanseal serve`:
Success once an instance is in the encrypted spool; registered after, also across a SIGKILL;
never plaintext on disk; an undecodable instance quarantined and reported; A700 when full."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from tests.dicom.scu import count, push, same_instance

from cli.crafted import crafted_rle
from devnode import ANVIL_FUNDER_KEY, anvil_binary
from fault_support import Anvil, Served
from gateway_harness import GatewayProcess, World, free_port, make_world
from scanseal.client import GatewayClient
from scanseal.dicom.index import DicomIndex

MARKER = "SPOOLMARKER^PLAINTEXT"


def _world(root: Path, dicom: str = "") -> World:
    port = free_port()
    cards = root / "home" / "members"
    extra = (
        f'\n[dicom]\nenabled = true\nport = {port}\nrecipients = ["{cards / "lee.card.json"}"]\n'
        f"{dicom}"
    )
    world = make_world(root, ["lee"], mode="batched", extra=extra)
    world.dicom_port = port  # type: ignore[attr-defined]
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return _world(tmp_path_factory.mktemp("spool"))


def series(directory: Path, n: int) -> tuple[list[Path], list[bytes]]:
    """``n`` 256 × 256 CT slices of one new study, PatientName :data:`MARKER`; the files and a
    run of each one's pixel bytes (what must never be found in the spool)."""
    directory.mkdir()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study, serie = generate_uid(), generate_uid()
    rng = np.random.default_rng(11)
    paths, runs = [], []
    for i in range(n):
        ds = source.copy()
        ds.Rows = ds.Columns = 256
        pixels = rng.integers(0, 4000, (256, 256), dtype=np.int16).tobytes()
        ds.PixelData = pixels
        ds.PatientName = MARKER
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, serie
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = i + 1
        path = directory / f"ct{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        runs.append(pixels[4096:4160])
    return paths, runs


class Scanner:
    """Reads every file under a directory again and again in a thread, noting any that holds
    one of ``needles``."""

    def __init__(self, directory: Path, needles: list[bytes]) -> None:
        self.directory, self.needles = directory, needles
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scanner:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.scan()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan()

    def scan(self) -> None:
        for path in list(self.directory.rglob("*")) if self.directory.exists() else []:
            try:
                data = path.read_bytes() if path.is_file() else b""
            except OSError:  # renamed or deleted meanwhile
                continue
            if any(needle in data for needle in self.needles):
                self.hits.append(str(path))
        self.scans += 1


def spool_dir(world: World) -> Path:
    return world.home / "gateway" / "dicom-spool"


def spool(gateway: GatewayProcess) -> dict[str, object]:
    return dict(httpx.get(f"{gateway.url}/v1/health", timeout=10).json()["scp"]["spool"])


def drained(gateway: GatewayProcess, timeout: float = 120.0) -> dict[str, object]:
    """Wait until the gateway's spool is empty (every acknowledged instance registered)."""
    deadline = time.monotonic() + timeout
    while (found := spool(gateway))["depth"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found["depth"] == 0, found
    return found


def records(world: World) -> int:
    return count(world.home / "gateway" / "gateway.sqlite3", "records")


def uids(paths: list[Path]) -> list[str]:
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]


@pytest.fixture
def gateway(world: World) -> Iterator[GatewayProcess]:
    process = GatewayProcess(world).start()
    yield process
    process.stop()


def test_a_gateway_killed_after_the_last_success_registers_every_instance_once(
    world: World, tmp_path: Path
):
    sent, runs = series(tmp_path / "series", 30)
    needles = [MARKER.encode(), *runs]
    first = GatewayProcess(world).start()
    before = records(world)
    try:
        with Scanner(spool_dir(world), needles) as scanner:
            assert push(world.dicom_port, sent) == [0] * len(sent)  # type: ignore[attr-defined]
            first.process.kill()  # type: ignore[union-attr]
            first.process.wait()  # type: ignore[union-attr]
            left = sorted(spool_dir(world).glob("*.sealed"))
            assert left, "every instance was registered before the kill: nothing to replay"
            second = GatewayProcess(world).start()
            try:
                drained(second)
                with GatewayClient(second.url, world.people["lee"]) as lee:
                    index = DicomIndex.at(world.home / "gateway")
                    rows = {i.sop_instance_uid: i for i in index.instances()}
                    index.close()
                    opened = lee.fetch(rows[uids(sent)[-1]].manifest_cid, tmp_path / "last.dcm")
                same_instance(opened.path, sent[-1])
            finally:
                second.stop()
    finally:
        first.stop()
    assert scanner.hits == []
    assert scanner.scans > 3
    assert records(world) == before + len(sent)  # each acknowledged instance exactly once
    assert set(uids(sent)) <= set(rows)
    assert len({rows[uid].manifest_cid for uid in uids(sent)}) == len(sent)
    assert not list(spool_dir(world).glob("*.sealed"))
    assert not list(spool_dir(world).glob("*.cid"))
    log = world.home.joinpath("gateway.log").read_text()
    assert f"{len(left)} spooled instance(s) from before the restart" in log


def test_an_undecodable_instance_is_quarantined_and_reported(
    gateway: GatewayProcess, world: World, tmp_path: Path
):
    good, _runs = series(tmp_path / "good", 2)
    bad = crafted_rle(tmp_path / "crafted.dcm")
    before = records(world)
    bad_uid = str(pydicom.dcmread(bad, stop_before_pixels=True).SOPInstanceUID)
    assert push(world.dicom_port, [good[0], bad, good[1]]) == [0, 0, 0]  # type: ignore[attr-defined]
    state = drained(gateway)
    assert state["quarantined"] == 1
    assert records(world) == before + 2
    index = DicomIndex.at(world.home / "gateway")
    indexed = {i.sop_instance_uid for i in index.instances()}
    index.close()
    assert set(uids(good)) <= indexed
    assert bad_uid not in indexed
    (kept,) = (spool_dir(world) / "quarantine").iterdir()
    assert kept.stat().st_mode & 0o777 == 0o600
    assert b"DICM" not in kept.read_bytes()  # still encrypted
    lines = [line for line in gateway.log.read_text().splitlines() if "quarantined" in line]
    assert len(lines) == 1
    assert bad_uid in lines[0]
    assert "WARNING" in lines[0]
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert "scanseal_scp_quarantined_total 1.0" in metrics
    assert "scanseal_scp_spool_instances 0.0" in metrics


def test_a_full_spool_answers_a700_and_loses_nothing(tmp_path: Path):
    world = _world(tmp_path, "spool_max_instances = 1\nspool_wait_seconds = 0\n")
    sent, _runs = series(tmp_path / "series", 8)
    gateway = GatewayProcess(world).start()
    try:
        statuses = push(world.dicom_port, sent)  # type: ignore[attr-defined]
        assert set(statuses) <= {0x0000, 0xA700}
        assert 0xA700 in statuses
        assert 0x0000 in statuses
        drained(gateway)
        index = DicomIndex.at(world.home / "gateway")
        indexed = {i.sop_instance_uid for i in index.instances()}
        index.close()
        accepted = [uid for uid, status in zip(uids(sent), statuses, strict=True) if not status]
        assert set(accepted) == indexed
        assert records(world) == len(accepted)
        refused = [p for p, status in zip(sent, statuses, strict=True) if status]
        assert push(world.dicom_port, refused[:1]) == [0]  # type: ignore[attr-defined]
    finally:
        gateway.stop()
    log = gateway.log.read_text()
    assert "the spool is full; send again later" in log


def test_the_health_answer_shows_the_spool(gateway: GatewayProcess):
    scp = httpx.get(f"{gateway.url}/v1/health").json()["scp"]
    assert scp["acknowledge"] == "durable"
    assert set(scp["spool"]) == {"depth", "bytes", "oldest_seconds", "quarantined"}
    assert spool_dir(gateway.world).stat().st_mode & 0o777 == 0o700


def test_a_ledger_that_is_down_is_waited_for_and_nothing_is_quarantined(tmp_path: Path):
    """anvil stopped: instances are still acknowledged (spooled), their registrations retried
    with back-off (counted in /metrics), and registered once anvil is back; none quarantined."""
    binary = anvil_binary()
    if binary is None:
        pytest.skip("anvil is not installed: run `make install-contracts`")
    anvil = Anvil(binary, tmp_path / "anvil-state.json").start()
    try:
        port = free_port()
        cards = tmp_path / "home" / "members"
        world = make_world(
            tmp_path, ["lee"],
            extra=f'\n[dicom]\nenabled = true\nport = {port}\n'
            f'recipients = ["{cards / "lee.card.json"}"]\n',
            ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil.url}"\ntimeout = 3',
        )  # fmt: skip
        sent, _runs = series(tmp_path / "series", 3)
        gateway = Served(world, {"SCANSEAL_LEDGER_FUNDER_KEY": ANVIL_FUNDER_KEY}).start()
        try:
            anvil.stop()
            assert push(port, sent) == [0, 0, 0]
            deadline = time.monotonic() + 60
            while "scanseal_scp_retries_total 0.0" in (
                metrics := httpx.get(f"{gateway.url}/metrics").text
            ):
                assert time.monotonic() < deadline, "no registration was retried"
                time.sleep(0.2)
            assert spool(gateway)["depth"] == 3
            anvil.start()
            assert drained(gateway)["quarantined"] == 0
        finally:
            gateway.stop()
    finally:
        anvil.stop()
    assert "scanseal_scp_spool_instances 3.0" in metrics
    assert records(world) == 3
    assert "not registered yet" in gateway.log.read_text()
