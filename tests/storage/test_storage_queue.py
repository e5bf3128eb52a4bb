"""The replication queue without nodes answering: durability of the row, fail-closed reads,
nothing dropped, configuration. (With real js-ipfs nodes: test_storage_queue_jsipfs.py.)"""

from __future__ import annotations

import io
import os
import sqlite3
import time

import pytest

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.storage import (
    CID,
    EmbeddedStore,
    KuboNode,
    ReplicatedStore,
    StorageConfig,
    load_config,
    open_store,
)
from storage import jsipfs


def _down_nodes(count: int) -> list[KuboNode]:
    """Nodes on free ports nobody listens on: every push is refused at once."""
    return [
        KuboNode(f"http://127.0.0.1:{jsipfs.free_port()}", timeout=2, connect_timeout=1)
        for _ in range(count)
    ]


def _queued(root, nodes, **kwargs) -> ReplicatedStore:
    kwargs.setdefault("drain_seconds", 0.2)
    return ReplicatedStore(
        EmbeddedStore(root, durable=True),
        nodes,
        min_replicas=kwargs.pop("min_replicas", len(nodes)),
        retries=0,
        backoff=0.05,
        replicate="queued",
        **kwargs,
    )


def _rows(root) -> list[tuple[str, int]]:
    with sqlite3.connect(root / "index.sqlite") as db:
        return db.execute("SELECT cid, attempts FROM replication ORDER BY cid").fetchall()


def test_a_queued_put_returns_with_the_nodes_down_and_keeps_the_object_queued(tmp_path):
    nodes = _down_nodes(2)
    data = os.urandom(300_000)
    with _queued(tmp_path, nodes) as store:
        cid = store.put(io.BytesIO(data))
        assert store.last_report is None  # nothing was pushed before put returned
        with store.get(cid) as stream:  # served from the local copy
            assert stream.read() == data
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(store.lag().nodes) < len(nodes):  # both tried
            time.sleep(0.05)
        lag = store.lag()
        assert (lag.mode, lag.queued) == ("queued", 1)
        assert lag.oldest_seconds is not None
        assert lag.oldest_seconds >= 0
        assert {n.node for n in lag.nodes} == {n.url for n in nodes}
        assert all("connection refused" in n.last_error for n in lag.nodes)
    # closed with the nodes still down: left queued, not dropped, and back after a reopen
    assert [row[0] for row in _rows(tmp_path)] == [cid]
    assert _rows(tmp_path)[0][1] >= 1
    with _queued(tmp_path, nodes, background=False) as again:
        assert again.queue.queued() == [cid]
        assert again.local.has(cid)


def test_the_queue_row_is_written_in_the_commit_that_indexes_the_object(tmp_path):
    """One transaction: the put that fails before it commits leaves neither blocks nor row."""

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            raise OSError("the source disk went away")

    with _queued(tmp_path, _down_nodes(1), background=False) as store:
        with pytest.raises(OSError, match="went away"):
            store.put(Broken())
        assert store.queue.queued() == []
        assert store.local.pins() == []
        cid = store.put(io.BytesIO(b"x" * 1000))
        assert store.queue.queued() == [cid]
        assert store.local.pins() == [cid]


def test_a_read_of_a_queued_object_is_verified_and_never_falls_back(tmp_path):
    """Fail closed: the local copy is the only one; a rotten block is an IntegrityError."""
    data = os.urandom(3 * 256 * 1024)
    with _queued(tmp_path, _down_nodes(1), background=False) as store:
        cid = store.put(io.BytesIO(data))
        leaf = next(iter_leaves(store.local, cid))
        where = store.local.block_location(leaf)
        assert where is not None
        pack, offset, _ = where
        with open(pack, "r+b") as handle:
            handle.seek(offset + 10)
            byte = handle.read(1)
            handle.seek(offset + 10)
            handle.write(bytes([byte[0] ^ 1]))
        with pytest.raises(IntegrityError), store.get(cid) as stream:
            stream.read()
        assert store.queue.queued() == [cid]


def iter_leaves(local: EmbeddedStore, cid: str):
    from scanseal.storage._dagpb import decode_file_node

    root = CID.parse(cid)
    for link in decode_file_node(local.read_block(root), root).links:
        yield link.cid


def test_unpin_forgets_the_object_and_pin_queues_it_again(tmp_path):
    with _queued(tmp_path, _down_nodes(1), background=False) as store:
        cid = store.put(io.BytesIO(b"y" * 5000))
        with pytest.raises(Exception, match="unpinned locally"):
            store.unpin(cid)  # the node is down: said, but the local pin and the row are gone
        assert store.queue.queued() == []
        assert store.local.pins() == []
        store.pin(cid)
        assert store.queue.queued() == [cid]


def test_config_selects_the_mode_and_refuses_others(tmp_path):
    path = tmp_path / "scanseal.toml"
    path.write_text(
        '[storage]\nbackend = "kubo"\nnodes = ["http://127.0.0.1:9"]\nmin_replicas = 1\n'
        'replicate = "queued"\ndrain_seconds = 0.5\nmax_lag_seconds = 60\n'
        f'root = "{tmp_path / "blocks"}"\n'
    )
    config = load_config(path, env={})
    assert (config.replicate, config.drain_seconds, config.max_lag_seconds) == ("queued", 0.5, 60)
    with open_store(config, background=False) as store:
        assert isinstance(store, ReplicatedStore)
        assert store.mode == "queued"
        assert store.local.durable
        assert store.max_lag_seconds == 60
    assert StorageConfig().replicate == "sync"
    with pytest.raises(InvalidInput, match="replicate must be one of"):
        load_config(path, env={"SCANSEAL_STORAGE_REPLICATE": "later"})
    with pytest.raises(InvalidInput, match="replicate must be one of"):
        ReplicatedStore(EmbeddedStore(tmp_path / "x"), _down_nodes(1), min_replicas=1,
                        replicate="async")  # fmt: skip


def test_health_and_metrics_show_the_lag(tmp_path):
    """/v1/health's store entry and the /metrics series, on a real queued store."""
    from types import SimpleNamespace

    from scanseal.service.health import Health, _replication_families

    nodes = _down_nodes(2)
    with _queued(tmp_path, nodes, background=False, max_lag_seconds=0.0) as store:
        store.put(io.BytesIO(b"z" * 4000))
        store.queue.settle(store.queue.queued()[0], [], [(nodes[1].url, "refused")], 0.0)
        time.sleep(0.01)
        probe = SimpleNamespace(_gateway=SimpleNamespace(store=store))
        found = Health._store(probe)  # type: ignore[arg-type]
        entry = found["replication"]
        assert (entry["mode"], entry["queued"], entry["behind"]) == ("queued", 1, True)
        assert entry["oldest_seconds"] > 0
        assert entry["failing"] == {nodes[1].url: {"objects": 1, "error": "refused"}}
        assert found["ok"] is False
        series = {m.name: m.samples for m in _replication_families(store)}
    assert series["scanseal_store_replication_queued"][0].value == 1
    assert series["scanseal_store_replication_lag_seconds"][0].value > 0
    failing = {
        s.labels["node"]: s.value for s in series["scanseal_store_replication_failing_objects"]
    }
    assert failing == {nodes[0].url: 0, nodes[1].url: 1}


def test_a_node_that_is_down_costs_one_attempt_per_back_off_not_one_per_object(tmp_path):
    """Twenty queued objects, both nodes refusing: each node is probed with one object per
    back-off period (0.05 s doubling), so in 1.5 s it sees a handful of attempts in all."""
    nodes = _down_nodes(2)
    with _queued(tmp_path, nodes, background=False) as offline:
        for n in range(20):
            offline.put(io.BytesIO(n.to_bytes(4, "big") * 100))
    with _queued(tmp_path, nodes) as store:  # all twenty due at once when it opens
        time.sleep(1.5)
        lag = store.lag()
    assert lag.queued == 20
    assert len(lag.nodes) == 2
    for node in lag.nodes:
        assert 1 <= node.failures <= 8, node  # probes at 0, 0.05, 0.15, 0.35, 0.75 s…


def test_storage_drain_says_what_is_left_and_exits_5(tmp_path):
    """`scanseal storage drain` with the nodes down: one line, exit 5, the object still queued;
    on the embedded backend there is no queue: exit 2."""
    from storage.test_storage_cli import _run

    home = tmp_path / "home"
    home.mkdir()
    down = [f"http://127.0.0.1:{jsipfs.free_port()}" for _ in range(2)]
    (home / "scanseal.toml").write_text(
        '[storage]\nbackend = "kubo"\nreplicate = "queued"\nretries = 0\nbackoff = 0.05\n'
        f"drain_seconds = 0.2\nnodes = [{', '.join(chr(34) + u + chr(34) for u in down)}]\n"
    )
    (tmp_path / "in.bin").write_bytes(os.urandom(1000))
    added = _run(home, "storage", "add", str(tmp_path / "in.bin"))
    assert added.returncode == 0, added.stderr
    drained = _run(home, "storage", "drain", "--timeout", "0.5")
    assert drained.returncode == 5, drained.stderr
    (line,) = drained.stderr.strip().splitlines()
    assert "1 object(s) still queued after 0.5 s" in line
    assert down[0] in line
    assert "Traceback" not in drained.stderr
    assert [row[0] for row in _rows(home / "blocks")] == [added.stdout.strip()]
    embedded = _run(tmp_path / "other", "storage", "drain")
    assert embedded.returncode == 2
    assert "no replication queue" in embedded.stderr
