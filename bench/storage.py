"""Storage throughput: embedded put/get against the SHA-256 floor, and a js-ipfs node; put
latency with two js-ipfs nodes, replicated synchronously against the replication queue.

Usage: ``python bench/storage.py [--size-mib 256] [--node-mib 50] [--no-node]
[--replication-only] [--objects 60] [--object-kib 520]``.
The floor is SHA-256 over the same bytes in 256 KiB pieces, in memory, measured in the same
run: no CID computation can be faster, so put and get are reported as a share of it (target
>= 70 %). Each figure is the best of ``--repeat`` runs, to be robust on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from scanseal.storage import EmbeddedStore, KuboNode, ReplicatedStore  # noqa: E402

CHUNK = 256 * 1024


def _best(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def embedded(size: int, repeat: int, work: Path) -> dict[str, float]:
    data = os.urandom(size)
    source = work / "source.bin"
    source.write_bytes(data)

    def floor() -> None:
        view = memoryview(data)
        for offset in range(0, size, CHUNK):
            hashlib.sha256(view[offset : offset + CHUNK]).digest()

    counter = iter(range(1000))
    cids: list[str] = []

    def put() -> None:
        number = next(counter)
        if number > 1:  # keep store0 for get; drop the others so dirty pages stay bounded
            shutil.rmtree(work / f"store{number - 1}")
        with EmbeddedStore(work / f"store{number}") as store, open(source, "rb") as f:
            cids.append(store.put(f))

    def get() -> None:
        with EmbeddedStore(work / "store0") as store, store.get(cids[0]) as stream:
            while stream.read(1 << 20):
                pass

    t_floor = _best(repeat, floor)
    t_put = _best(repeat, put)
    t_get = _best(repeat, get)
    return {
        "size_mib": size / 2**20,
        "sha256_floor_mbps": _mbps(size, t_floor),
        "put_mbps": _mbps(size, t_put),
        "get_mbps": _mbps(size, t_get),
        "put_share_of_floor": t_floor / t_put,
        "get_share_of_floor": t_floor / t_get,
    }


def node(size: int, repeat: int, work: Path) -> dict[str, float]:
    jsipfs = importlib.import_module("storage.jsipfs")  # tests/storage, first on sys.path

    if (reason := jsipfs.missing_reason()) is not None:
        raise SystemExit(reason)
    data = os.urandom(size)
    daemon = jsipfs.start(work, "bench")
    try:
        kubo = KuboNode(daemon.url, timeout=120)
        cid = ""

        def add() -> None:
            nonlocal cid
            view = memoryview(data)
            cid = kubo.add(bytes(view[i : i + CHUNK]) for i in range(0, size, CHUNK))

        def cat() -> None:
            stream = kubo.open_cat(cid)
            try:
                while stream.read(1 << 20):
                    pass
            finally:
                stream.close()

        counter = iter(range(1000))

        def verified_get() -> None:
            local = EmbeddedStore(work / f"empty{next(counter)}")
            store = ReplicatedStore(local, [kubo], min_replicas=1)
            with store, store.get(cid) as stream:
                while stream.read(1 << 20):
                    pass

        t_add = _best(repeat, add)
        t_cat = _best(repeat, cat)
        t_get = _best(repeat, verified_get)
    finally:
        daemon.stop()
    return {
        "size_mib": size / 2**20,
        "jsipfs_add_mbps": _mbps(size, t_add),
        "jsipfs_cat_mbps": _mbps(size, t_cat),
        "verified_get_from_node_mbps": _mbps(size, t_get),
    }


def _latencies(store: object, blobs: list[bytes]) -> dict[str, float]:
    """Wall and calling-thread CPU per put, in ms: median, 95th percentile, mean CPU."""
    put = getattr(store, "put")  # noqa: B009 - any BlobStore
    walls, cpus = [], []
    for blob in blobs:
        wall, cpu = time.perf_counter(), time.thread_time()
        put(io.BytesIO(blob))
        cpus.append((time.thread_time() - cpu) * 1e3)
        walls.append((time.perf_counter() - wall) * 1e3)
    walls.sort()
    return {
        "put_wall_ms_median": round(statistics.median(walls), 2),
        "put_wall_ms_p95": round(walls[int(0.95 * (len(walls) - 1))], 2),
        "put_thread_cpu_ms_mean": round(statistics.fmean(cpus), 2),
    }


def replication(count: int, size: int, work: Path) -> dict[str, object]:
    """``count`` objects of ``size`` bytes (a 512x512 CT envelope is about 520 KiB) put into
    an embedded store, a durable one, and a store over two js-ipfs nodes with min_replicas 2:
    ``replicate = "sync"`` and ``"queued"`` (then the time until the queue drained). Process
    CPU counts every thread (the replicator's too)."""
    jsipfs = importlib.import_module("storage.jsipfs")
    if (reason := jsipfs.missing_reason()) is not None:
        raise SystemExit(reason)
    daemons = [jsipfs.start(work, f"node{i}") for i in range(2)]
    out: dict[str, object] = {"objects": count, "object_kib": size // 1024}
    try:
        nodes = [KuboNode(d.url, timeout=120) for d in daemons]
        for mode in ("embedded", "embedded_durable", "sync", "queued"):
            blobs = [os.urandom(size) for _ in range(count)]  # new bytes: nothing deduplicated
            local = EmbeddedStore(work / mode, durable=mode in ("embedded_durable", "queued"))
            store: EmbeddedStore | ReplicatedStore = local
            if mode in ("sync", "queued"):
                store = ReplicatedStore(local, nodes, min_replicas=2, replicate=mode)
            cpu, wall = time.process_time(), time.perf_counter()
            found: dict[str, object] = dict(_latencies(store, blobs))
            found["puts_wall_s"] = round(time.perf_counter() - wall, 3)
            if isinstance(store, ReplicatedStore):
                found["drained"] = store.drain(600)
                found["until_replicated_wall_s"] = round(time.perf_counter() - wall, 3)
            found["process_cpu_s"] = round(time.process_time() - cpu, 3)
            store.close()
            out[mode] = found
    finally:
        for daemon in daemons:
            daemon.stop()
    return out


def machine() -> dict[str, str]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram_gib": f"{mem_kib / 2**20:.1f}",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=128)
    parser.add_argument("--node-mib", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-node", action="store_true")
    parser.add_argument("--replication-only", action="store_true")
    parser.add_argument("--objects", type=int, default=60)
    parser.add_argument("--object-kib", type=int, default=520)
    args = parser.parse_args()
    results: dict[str, object] = {"machine": machine()}
    if not args.replication_only:
        with tempfile.TemporaryDirectory() as tmp:
            results["embedded"] = embedded(args.size_mib << 20, args.repeat, Path(tmp))
    if not args.no_node and not args.replication_only:
        with tempfile.TemporaryDirectory() as tmp:
            results["jsipfs"] = node(args.node_mib << 20, args.repeat, Path(tmp))
    if not args.no_node:
        with tempfile.TemporaryDirectory() as tmp:
            results["replication"] = replication(args.objects, args.object_kib << 10, Path(tmp))
    results["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "storage.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
