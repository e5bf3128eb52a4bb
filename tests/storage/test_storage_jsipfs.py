"""Integration: real js-ipfs daemons (kubo RPC API) on 127.0.0.1, started and killed by PID."""

from __future__ import annotations

import io
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scanseal.errors import IntegrityError, StorageUnavailable
from scanseal.storage import (
    CID,
    EmbeddedStore,
    KuboNode,
    ReplicatedStore,
    cid_of,
    export_car,
    import_car,
)
from scanseal.storage._cid import block_key
from scanseal.storage._dagpb import decode_file_node
from storage import jsipfs
from storage import storage_golden as golden

pytestmark = pytest.mark.integration
_REASON = jsipfs.missing_reason()
if _REASON is not None:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must run the js-ipfs tests: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

CHUNK = 256 * 1024


def _start(base: Path, count: int) -> list[jsipfs.Daemon]:
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(jsipfs.start, base, f"node{i}") for i in range(count)]
        daemons = []
        errors = []
        for future in futures:
            try:
                daemons.append(future.result())
            except Exception as error:
                errors.append(error)
    if errors:
        for daemon in daemons:
            daemon.kill()
        raise errors[0]
    return daemons


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    daemons = _start(tmp_path_factory.mktemp("ipfs"), 2)
    yield daemons
    for daemon in daemons:
        daemon.stop()


@pytest.fixture
def trio(tmp_path):
    daemons = _start(tmp_path / "ipfs", 3)
    yield daemons
    for daemon in daemons:
        daemon.kill()


def _store(path: Path, daemons, *, min_replicas=2, **kwargs) -> ReplicatedStore:
    nodes = [KuboNode(d.url, timeout=30, connect_timeout=5) for d in daemons]
    return ReplicatedStore(
        EmbeddedStore(path), nodes, min_replicas=min_replicas, retries=2, backoff=0.05, **kwargs
    )


def test_golden_cids_rechecked_against_a_running_node(cluster, tmp_path):
    node = KuboNode(cluster[0].url, timeout=60)
    files = golden.write_vectors(tmp_path)
    by_importer = golden.importer_cids(files)
    for vector, path in zip(golden.load(), files, strict=True):
        by_node = node.add(golden.vector_stream(int(vector["size"])))  # type: ignore[call-overload]
        assert by_node == vector["cid"] == by_importer[path], vector["name"]
        with open(path, "rb") as handle:
            assert cid_of(handle) == vector["cid"]


def test_round_trip_through_two_nodes(cluster, tmp_path):
    data = os.urandom(3 * CHUNK + 99)
    with _store(tmp_path / "a", cluster) as writer:
        cid = writer.put(io.BytesIO(data))
        assert writer.last_report is not None
        assert set(writer.last_report.replicas) == {d.url for d in cluster}
        assert writer.stat(cid).replicas == tuple(d.url for d in cluster)
    writer_nodes = tuple(d.url for d in cluster)
    with _store(tmp_path / "b", cluster) as reader:  # empty local store: reads from the nodes
        assert not reader.local.has(cid)
        with reader.get(cid) as stream:
            assert stream.read() == data
        assert reader.last_read_failures == []
        stat = reader.stat(cid)
        assert (stat.size, stat.pinned, stat.replicas) == (len(data), False, writer_nodes)


def test_a_node_that_serves_a_corrupted_block_raises_integrity_error(cluster, tmp_path):
    data = os.urandom(4 * CHUNK)
    victim = cluster[1]
    node = KuboNode(victim.url)
    cid = node.add([data])
    root = CID.parse(cid)
    bad = decode_file_node(node.block_get(cid), root).links[2].cid
    block_file = jsipfs.block_file(victim, block_key(bad))
    corrupted = bytearray(block_file.read_bytes())
    corrupted[1000] ^= 0x01
    block_file.write_bytes(bytes(corrupted))

    with _store(tmp_path / "r", [victim], min_replicas=1) as reader:
        stream = reader.get(cid)
        assert stream.read(2 * CHUNK) == data[: 2 * CHUNK]
        with pytest.raises(IntegrityError) as raised:
            stream.read()
    assert str(bad) in raised.value.reason
    assert victim.url in raised.value.reason


def test_a_silent_node_is_reported_at_once_not_retried_nor_skipped(cluster, tmp_path):
    """SIGSTOP one node: it accepts connections but never answers, like a hung server. It is
    reported after its first timeout: each retry would only wait another timeout."""
    slow = cluster[1]
    data = os.urandom(CHUNK + 7)
    os.kill(slow.pid, signal.SIGSTOP)
    try:
        # A short timeout only for the stopped node: a healthy node on a busy machine may need
        # more than half a second, and must not be mistaken for the hung one.
        nodes = [
            KuboNode(d.url, timeout=0.5, connect_timeout=0.5)
            if d is slow
            else KuboNode(d.url, timeout=30, connect_timeout=10)
            for d in cluster
        ]
        store = ReplicatedStore(EmbeddedStore(tmp_path / "w"), nodes, min_replicas=1, retries=1)
        with store:
            cid = store.put(io.BytesIO(data))
            report = store.last_report
        assert report is not None
        assert report.replicas == (cluster[0].url,)
        (failure,) = report.failures
        assert (failure.node, failure.attempts) == (slow.url, 1)
        assert "timed out" in failure.error
        assert "not retried" in failure.error
    finally:
        os.kill(slow.pid, signal.SIGCONT)
    assert KuboNode(cluster[0].url).is_pinned(cid)


def test_car_exchange_with_a_real_node(cluster, tmp_path):
    data = os.urandom(2 * CHUNK + 5)
    node = KuboNode(cluster[0].url)
    with EmbeddedStore(tmp_path / "mine") as mine:
        cid = mine.put(io.BytesIO(data))
        node.dag_import(export_car(mine, cid))
    assert node.is_pinned(cid)
    stream = node.open_cat(cid)
    try:
        assert stream.read(len(data) + 1) == data
    finally:
        stream.close()

    theirs = node.add([b"from the node " * 50_000])
    with EmbeddedStore(tmp_path / "imported") as imported:
        with node.dag_export(theirs) as reply:
            car = reply.read()
        assert import_car(imported, io.BytesIO(car)) == [theirs]
        with imported.get(theirs) as copy:
            assert copy.read() == b"from the node " * 50_000


def test_replication_when_a_node_is_killed_mid_way(trio, tmp_path):
    data = os.urandom(32 * CHUNK)
    killed = trio[2]

    def kill_mid_upload(url: str, sent: int) -> None:
        if url == killed.url and sent >= 4 * CHUNK and killed.process.poll() is None:
            killed.kill()

    with _store(tmp_path / "w", trio, progress=kill_mid_upload) as writer:
        cid = writer.put(io.BytesIO(data))
        report = writer.last_report
        assert report is not None
        assert set(report.replicas) == {trio[0].url, trio[1].url}
        (failure,) = report.failures
        assert failure.node == killed.url
        assert failure.attempts == 3  # first try + 2 retries with backoff, then reported
        assert writer.replica_map([cid])[cid] == [trio[0].url, trio[1].url]

    # Reads fall back: the dead node is listed first, the next one serves.
    order = [killed, trio[0], trio[1]]
    with _store(tmp_path / "r1", order) as reader, reader.get(cid) as stream:
        assert stream.read() == data
        assert any(killed.url in failure for failure in reader.last_read_failures)

    # A node dying in the middle of a read: the next node resumes at the same offset.
    with _store(tmp_path / "r2", trio[:2]) as reader:
        stream = reader.get(cid)
        first = stream.read(3 * CHUNK)
        trio[0].kill()
        rest = stream.read()
        assert first + rest == data
        assert any(trio[0].url in failure for failure in reader.last_read_failures)

    # All nodes down: a clear StorageUnavailable, and nothing lost locally.
    trio[1].kill()
    fresh = os.urandom(CHUNK + 1)
    with _store(tmp_path / "w", trio) as writer:
        with pytest.raises(StorageUnavailable) as raised:
            writer.put(io.BytesIO(fresh))
        message = raised.value.reason
        assert "stored locally" in message
        assert "0 of the 2 required replicas" in message
        for daemon in trio:
            assert daemon.url in message
        kept = cid_of(io.BytesIO(fresh))
        assert writer.local.has(kept)
        with writer.get(kept) as stream:
            assert stream.read() == fresh
    with _store(tmp_path / "empty", trio) as reader, pytest.raises(StorageUnavailable) as raised:
        reader.get(cid).read()
    assert "no node could serve" in raised.value.reason


def test_cli_with_nodes_reports_a_down_node_and_shows_replicas(cluster, tmp_path):
    import subprocess
    import sys

    down = f"http://127.0.0.1:{jsipfs.free_port()}"  # nothing listens there
    urls = [d.url for d in cluster] + [down]
    config = tmp_path / "scanseal.toml"
    config.write_text(
        '[storage]\nbackend = "kubo"\nmin_replicas = 2\nretries = 1\nbackoff = 0.05\n'
        f"nodes = [{', '.join(repr(u).replace(chr(39), chr(34)) for u in urls)}]\n"
    )
    (tmp_path / "in.bin").write_bytes(os.urandom(300_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANSEAL_")}
    env.update(SCANSEAL_HOME=str(tmp_path / "home"), SCANSEAL_CONFIG=str(config))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scanseal", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    added = run("storage", "add", str(tmp_path / "in.bin"))
    assert added.returncode == 0, added.stderr
    assert f"warning: replica not made: {down}" in added.stderr
    status = run("storage", "status")
    assert status.returncode == 0, status.stderr
    assert "DOWN" in status.stdout
    row = next(line for line in status.stdout.splitlines() if added.stdout.strip() in line)
    assert " 2 " in row
