"""Integration: the replication queue against real js-ipfs daemons (kubo RPC API) on 127.0.0.1.

A node down while puts return, then back; a restart with objects still queued; a process
killed in the middle of draining; ``scanseal storage status`` showing the lag.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scanseal.storage import EmbeddedStore, KuboNode, ReplicatedStore
from storage import jsipfs
from storage.test_storage_jsipfs import _start

pytestmark = pytest.mark.integration
_REASON = jsipfs.missing_reason()
if _REASON is not None:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must run the js-ipfs tests: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def pair(tmp_path):
    daemons = _start(tmp_path / "ipfs", 2)
    yield daemons
    for daemon in daemons:
        daemon.kill()


def _queued(root: Path, urls: list[str], **kwargs) -> ReplicatedStore:
    nodes = [KuboNode(url, timeout=30, connect_timeout=5) for url in urls]
    return ReplicatedStore(
        EmbeddedStore(root, durable=True),
        nodes,
        min_replicas=kwargs.pop("min_replicas", 2),
        retries=0,
        backoff=0.05,
        replicate="queued",
        drain_seconds=kwargs.pop("drain_seconds", 1.0),
        **kwargs,
    )


def _pinned_on_all(urls: list[str], cids: list[str]) -> bool:
    return all(KuboNode(url).is_pinned(cid) for url in urls for cid in cids)


def test_puts_return_while_a_node_is_down_and_the_queue_drains_when_it_is_back(pair, tmp_path):
    up, down = pair
    down.kill()
    urls = [up.url, down.url]
    blobs = [os.urandom(256 * 1024 + n) for n in range(3)]
    with _queued(tmp_path / "w", urls) as store:
        cids = [store.put(io.BytesIO(blob)) for blob in blobs]
        assert store.lag().queued == 3  # returned with one of the two nodes down
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not store.lag().nodes:
            time.sleep(0.05)
        lag = store.lag()
        assert lag.queued == 3  # min_replicas = 2 and one node is down: none may leave
        assert [n.node for n in lag.nodes] == [down.url]
        assert "connection refused" in lag.nodes[0].last_error
        for cid, blob in zip(cids, blobs, strict=True):  # reads: the local copy, verified
            with store.get(cid) as stream:
                assert stream.read() == blob
        pair[1] = jsipfs.relaunch(down)
        store.wake()
        assert store.drain(90), store.lag()
        assert store.lag().queued == 0
        assert store.lag().nodes == ()
    assert _pinned_on_all(urls, cids)


def test_a_restart_with_a_non_empty_queue_drains_it(pair, tmp_path):
    urls = [d.url for d in pair]
    with _queued(tmp_path / "w", urls, background=False) as offline:  # queued, never pushed
        cids = [offline.put(io.BytesIO(os.urandom(70_000 + n))) for n in range(5)]
        assert offline.queue.queued() == sorted(cids, key=offline.queue.queued().index)
    assert not any(KuboNode(urls[0]).is_pinned(cid) for cid in cids)
    with _queued(tmp_path / "w", urls) as reopened:  # the queue is replayed on open
        assert reopened.drain(90), reopened.lag()
    assert _pinned_on_all(urls, cids)


_DRAINER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from scanseal.storage import EmbeddedStore, KuboNode, ReplicatedStore
    root, urls = Path(sys.argv[1]), sys.argv[2:]
    store = ReplicatedStore(EmbeddedStore(root, durable=True), [KuboNode(u) for u in urls],
                            min_replicas=2, retries=0, backoff=0.05, replicate="queued")
    print("draining", flush=True)
    time.sleep(600)  # killed by the test meanwhile
    """
)


def test_a_process_killed_while_draining_loses_nothing(pair, tmp_path):
    urls = [d.url for d in pair]
    root = tmp_path / "w"
    with _queued(root, urls, background=False) as offline:
        cids = [offline.put(io.BytesIO(os.urandom(300_000 + n))) for n in range(40)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", _DRAINER, str(root), *urls], env=env, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"draining\n"
        with _queued(root, urls, background=False) as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and watcher.lag().queued == len(cids):
                time.sleep(0.01)
            left = watcher.lag().queued
        os.kill(child.pid, signal.SIGKILL)  # mid-drain: some confirmed, some not
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert 0 < left < len(cids), "the kill did not land in the middle of the drain"
    with _queued(root, urls) as reopened:
        still = reopened.lag().queued
        assert still <= left
        assert reopened.drain(120), reopened.lag()
        for cid in cids:
            assert reopened.local.has(cid)
    assert _pinned_on_all(urls, cids)


def test_storage_status_shows_the_lag(pair, tmp_path):
    down = f"http://127.0.0.1:{jsipfs.free_port()}"  # nothing listens there
    urls = [pair[0].url, down]
    config = tmp_path / "scanseal.toml"
    config.write_text(
        '[storage]\nbackend = "kubo"\nmin_replicas = 2\nretries = 0\nbackoff = 0.05\n'
        'replicate = "queued"\ndrain_seconds = 0.5\nmax_lag_seconds = 60\n'
        f"nodes = [{', '.join(chr(34) + u + chr(34) for u in urls)}]\n"
    )
    (tmp_path / "in.bin").write_bytes(os.urandom(300_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANSEAL_")}
    env.update(SCANSEAL_HOME=str(tmp_path / "home"), SCANSEAL_CONFIG=str(config))
    env["PYTHONPATH"] = str(SRC)

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
    cid = added.stdout.strip()
    assert "queued for replication" in added.stderr
    status = run("storage", "status")
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert "replicate: queued" in out
    assert "queued objects: 1" in out
    assert "oldest:" in out
    failing = next(line for line in out.splitlines() if down in line and "add failed" in line)
    assert "connection refused" in failing
    assert [cell.strip() for cell in failing.split("\u2502")][2] == "1"  # objects failing
    row = next(line for line in out.splitlines() if cid in line)
    assert "queued" in row


def test_a_silent_node_holds_up_only_its_probe(tmp_path):
    """Three nodes, min_replicas 2, one SIGSTOPped (accepts, never answers; 20 s timeout): the
    queue drains to the other two well before that timeout ends."""
    trio = _start(tmp_path / "ipfs", 3)
    hung = trio[2]
    try:
        os.kill(hung.pid, signal.SIGSTOP)
        nodes = [KuboNode(d.url, timeout=20, connect_timeout=5) for d in trio]
        store = ReplicatedStore(
            EmbeddedStore(tmp_path / "w", durable=True), nodes, min_replicas=2, retries=0,
            backoff=0.05, replicate="queued", drain_seconds=0.1,
        )  # fmt: skip
        with store:
            started = time.monotonic()
            cids = [store.put(io.BytesIO(os.urandom(100_000 + n))) for n in range(20)]
            assert store.drain(15), store.lag()
            assert time.monotonic() - started < 15
        assert _pinned_on_all([trio[0].url, trio[1].url], cids)
    finally:
        os.kill(hung.pid, signal.SIGCONT)
        for daemon in trio:
            daemon.kill()
