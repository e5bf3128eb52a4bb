"""Acceptor processes (``[dicom] acceptors``, the default 2) in a real `scanseal serve`: an
acceptor killed in the middle of a push loses nothing it acknowledged and is started again;
associations are spread over the acceptors; ``acceptors = 0`` answers in the gateway itself.
(The spool's bound across acceptors: tests/dicom/test_spool.py's A700 test runs with them.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from tests.dicom.scu import push
from tests.dicom.test_spool import _world, drained, records, series, spool_dir, uids

from gateway_harness import GatewayProcess
from scanseal.crypto.identity import Keystore
from scanseal.dicom.index import DicomIndex
from scanseal.dicom.spool import Spool, Spooled, SpoolWriter


def acceptor_pids(gateway: GatewayProcess) -> list[int]:
    """The gateway's acceptor processes (its children running ``scanseal.dicom._acceptor``)."""
    parent = str(gateway.process.pid)  # type: ignore[union-attr]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == parent and b"scanseal.dicom._acceptor" in command:
            found.append(int(stat.parent.name))
    return sorted(found)


def push_until_killed(port: int, paths: list[Path], kill_after: int, pids: list[int]) -> list[int]:
    """C-STORE ``paths`` on one association, SIGKILLing every acceptor once ``kill_after``
    answers came; the statuses answered (fewer than ``paths`` once the association broke)."""
    ae = AE(ae_title="CT1")
    ae.add_requested_context(pydicom.dcmread(paths[0], stop_before_pixels=True).SOPClassUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="SCANSEAL")
    assert assoc.is_established
    statuses: list[int] = []
    for n, path in enumerate(paths):
        if n == kill_after:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        status: Dataset = assoc.send_c_store(path)
        if not assoc.is_established or "Status" not in status:
            break
        statuses.append(int(status.Status))
    if assoc.is_established:
        assoc.abort()
    return statuses


def test_an_acceptor_killed_mid_push_loses_nothing_acknowledged(tmp_path: Path):
    world = _world(tmp_path)
    sent, _runs = series(tmp_path / "series", 40)
    gateway = GatewayProcess(world).start()
    try:
        first = acceptor_pids(gateway)
        assert len(first) == 2
        port = world.dicom_port  # type: ignore[attr-defined]
        statuses = push_until_killed(port, sent, 15, first)
        assert 15 <= len(statuses) < len(sent)
        assert set(statuses) == {0}
        deadline = time.monotonic() + 60
        while len(acceptor_pids(gateway)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        again = acceptor_pids(gateway)
        assert len(again) == 2
        assert not set(again) & set(first)
        drained(gateway)
        acknowledged = set(uids(sent[: len(statuses)]))
        index = DicomIndex.at(world.home / "gateway")
        rows = {i.sop_instance_uid: i.manifest_cid for i in index.instances()}
        index.close()
        assert acknowledged <= set(rows)  # every Success registered
        registered_before = len(rows)
        rest = [p for p, uid in zip(sent, uids(sent), strict=True) if uid not in rows]
        assert push(port, rest) == [0] * len(rest)  # the new acceptors take associations
        drained(gateway)
        assert records(world) == registered_before + len(rest)  # none twice
    finally:
        gateway.stop()
    assert not list(spool_dir(world).glob("*.sealed"))
    assert not list(spool_dir(world).glob("*.tmp"))
    assert "DICOM acceptor" in gateway.log.read_text()


def test_associations_are_spread_over_the_acceptors(tmp_path: Path):
    world = _world(tmp_path)
    sent, _runs = series(tmp_path / "series", 8)
    gateway = GatewayProcess(world).start()
    try:
        port = world.dicom_port  # type: ignore[attr-defined]
        pids = acceptor_pids(gateway)
        before = {pid: _threads(pid) for pid in pids}
        ae = AE(ae_title="CT1")
        ae.add_requested_context(pydicom.dcmread(sent[0], stop_before_pixels=True).SOPClassUID)
        held = [ae.associate("127.0.0.1", port, ae_title="SCANSEAL") for _ in range(2)]
        assert all(assoc.is_established for assoc in held)
        deadline = time.monotonic() + 20
        while True:
            grown = [pid for pid in pids if _threads(pid) > before[pid]]
            if len(grown) == len(pids) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sorted(grown) == pids  # one association each, not both in one process
        results: list[list[int]] = []
        pushers = [
            threading.Thread(
                target=lambda a=assoc, share=sent[i::2]: results.append(
                    [int(a.send_c_store(p).Status) for p in share]
                )
            )
            for i, assoc in enumerate(held)
        ]
        for thread in pushers:
            thread.start()
        for thread in pushers:
            thread.join()
        for assoc in held:
            assoc.release()
        assert sorted(s for r in results for s in r) == [0] * len(sent)
        drained(gateway)
    finally:
        gateway.stop()
    assert acceptor_pids(gateway) == []


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("acceptors", [0])
def test_acceptors_zero_answers_in_the_gateway(tmp_path: Path, acceptors: int):
    world = _world(tmp_path, f"acceptors = {acceptors}\n")
    sent, _runs = series(tmp_path / "series", 3)
    gateway = GatewayProcess(world).start()
    try:
        assert acceptor_pids(gateway) == []
        assert push(world.dicom_port, sent) == [0, 0, 0]  # type: ignore[attr-defined]
        drained(gateway)
    finally:
        gateway.stop()
    assert records(world) == 3


def test_the_spool_adopts_what_a_dead_acceptor_wrote_and_never_reported(tmp_path: Path):
    identity = Keystore(tmp_path / "keys", scrypt_n=2**10).create("gateway", "pass phrase")
    spool = Spool(tmp_path / "spool", identity, max_instances=10, max_bytes=1 << 20)
    mine = SpoolWriter(spool.directory, identity.card, slot=3)
    other = SpoolWriter(spool.directory, identity.card, slot=4)
    assert spool.reserve(10, 0)
    reported, size = mine.write(b"reported", "CT1")
    assert spool.admit(reported, size, 10) is not None  # what a ``put`` message does
    unreported, _size = mine.write(b"unreported", "CT1")
    alive, _size = other.write(b"another acceptor's", "CT1")
    (spool.directory / f"{unreported[:-5]}99999.tmp").write_bytes(b"never acknowledged")
    adopted = spool.adopt(3)
    assert [entry.name for entry in adopted] == [unreported]
    assert spool.open(adopted[0]) == Spooled("CT1", b"unreported")
    assert not list(spool.directory.glob("*.tmp"))
    assert spool.adopt(3) == []  # adopted once
    assert spool.status().depth == 2  # the other acceptor's entry waits for its report
    assert spool.reserve(10, 0)
    assert spool.admit(alive, 10, 10) is not None
    assert spool.reserve(7, 0)
    assert spool.admit(unreported, 10, 7) is None  # a late report of an adopted entry: no twin
    assert spool.status().depth == 3
