"""DICOM ingest speed: C-STORE acknowledged, then sealed and registered, for a 200-instance series.

    python bench/dicom.py [--instances 200] [--associations 1,4] [--modes per-record,batched]
                          [--json bench/out/dicom.json]

A real `scanseal serve` with the Storage SCP (embedded chain and store) runs as a child process.
The series is 512 × 512 16-bit CT slices (512 KiB of pixels each: CT_small's header with a
synthetic body and a fresh SOP Instance UID per slice). A pynetdicom SCU pushes it over one or
several concurrent associations; an instance counts only when its C-STORE answer is Success,
which the SCP gives (the default ``acknowledge = "durable"``) once the instance is checked and
durable, encrypted, in the gateway's spool (docs/DICOM.md). The row's ``registered_seconds`` is
the time from the push's start until the spool is empty: every instance screened by the tamper
detector (the default `flag` policy: the verdict is signed into the manifest), sealed, stored
and registered on the ledger. After each run the bench checks that the stored manifests carry
the screen's verdict.
The JSON (machine, date, load average before and after, command, one row per ledger mode and
association count) is what `make bench-dicom` leaves in bench/out/dicom.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pynetdicom import AE

from scanseal.crypto.identity import Keystore

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "bench passphrase"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ct_series(folder: Path, count: int) -> list[Path]:
    template = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    series = generate_uid()
    yy, xx = np.mgrid[-256:256, -256:256]
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        ds = template.copy()
        body = ((xx**2 + (yy * 1.3) ** 2) < 200**2) * 1000 + ((xx - i) ** 2 + yy**2 < 40**2) * 400
        ds.Rows, ds.Columns = 512, 512
        ds.PixelData = (body + rng.integers(0, 40, size=(512, 512))).astype(np.uint16).tobytes()
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / f"ct{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def start_gateway(home: Path, mode: str) -> tuple[subprocess.Popen[bytes], str, int]:
    keystore = Keystore(home / "keys", scrypt_n=2**10)
    keystore.create("gateway", PASSPHRASE)
    reader = keystore.create("reader", PASSPHRASE)
    members = home / "members"
    members.mkdir()
    (members / "reader.card.json").write_text(reader.card.to_json(), "utf-8")
    http_port, dicom_port = free_port(), free_port()
    config = home / "scanseal.toml"
    config.write_text(
        f'[gateway]\nidentity = "gateway"\nport = {http_port}\nmembers = "{members}"\n'
        f'[ledger]\nmode = "{mode}"\nbatch_size = 512\nbatch_seconds = 1\n'
        f"[dicom]\nenabled = true\nport = {dicom_port}\n"
        f'recipients = ["{members / "reader.card.json"}"]\n',
        "utf-8",
    )
    env = dict(os.environ, SCANSEAL_HOME=str(home), SCANSEAL_PASSPHRASE=PASSPHRASE)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    log = (home / "gateway.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "scanseal", "serve", "--config", str(config)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((home / "gateway.log").read_text()[-2000:])
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return process, url, dicom_port
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gateway did not start")


def push(port: int, paths: list[Path]) -> tuple[int, list[float]]:
    ae = AE(ae_title="BENCH")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.1"])
    assoc = ae.associate("127.0.0.1", port, ae_title="SCANSEAL")
    assert assoc.is_established
    ok, latencies = 0, []
    for path in paths:
        started = time.perf_counter()
        status = assoc.send_c_store(path)
        latencies.append(time.perf_counter() - started)
        ok += int(getattr(status, "Status", -1) == 0)
    assoc.release()
    return ok, latencies


def run(port: int, paths: list[Path], associations: int) -> dict[str, Any]:
    shares = [paths[i::associations] for i in range(associations)]
    started = time.perf_counter()
    with ThreadPoolExecutor(associations) as pool:
        results = list(pool.map(lambda share: push(port, share), shares))
    elapsed = time.perf_counter() - started
    latencies = sorted(x for _ok, lat in results for x in lat)
    stored = sum(ok for ok, _lat in results)
    return {
        "associations": associations,
        "instances": len(paths),
        "stored": stored,
        "series_seconds": round(elapsed, 2),
        "instances_per_second": round(stored / elapsed, 2),
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "latency_p95_ms": round(1000 * latencies[int(len(latencies) * 0.95) - 1], 1),
    }


def drained(url: str, timeout: float = 600.0) -> None:
    """Wait until the gateway's SCP spool is empty: every instance it acknowledged registered
    (``acknowledge = "durable"``, the default). Asked every quarter second: a health answer
    runs every probe (the chain, a probe write to the state directory), which more often would
    slow the very registrations it waits for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scp = httpx.get(url + "/v1/health", timeout=10).json().get("scp", {})
        if scp.get("spool", {"depth": 0})["depth"] == 0:
            return
        time.sleep(0.25)
    raise RuntimeError(f"the spool did not drain within {timeout:.0f} s")


def screened(home: Path) -> int:
    """How many stored manifests carry the tamper screen's signed verdict (after the run)."""
    from scanseal.dicom.index import DicomIndex
    from scanseal.storage import EmbeddedStore
    from scanseal.transfer.manifest import Manifest

    index, store = DicomIndex.at(home / "gateway"), EmbeddedStore(home / "blocks")
    try:
        found = 0
        for instance in index.instances():
            with store.get(instance.manifest_cid) as stream:
                found += Manifest.from_json(stream.read()).screen is not None
        return found
    finally:
        index.close()
        store.close()


def one_run(instances: int, mode: str, associations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scanseal-bench-dicom-") as scratch:
        root = Path(scratch)
        (root / "home").mkdir()
        (root / "series").mkdir()
        paths = ct_series(root / "series", instances)
        process, url, port = start_gateway(root / "home", mode)
        try:
            started = time.perf_counter()
            row = {"mode": mode, **run(port, paths, associations)}
            drained(url)  # the count below reads what was registered
            registered = time.perf_counter() - started
            row["registered_seconds"] = round(registered, 2)
            row["registered_per_second"] = round(row["stored"] / registered, 2)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        row["screened"] = screened(root / "home")
    if row["screened"] != row["stored"]:
        raise SystemExit(f"only {row['screened']} of {row['stored']} manifests were screened")
    return row


def machine() -> dict[str, Any]:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown CPU",
    )  # fmt: skip
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(ram, 1),
            "python": platform.python_version()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--associations", default="1,4")
    parser.add_argument("--modes", default="per-record,batched")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "dicom.json")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= {"per-record", "batched"}:
        parser.error("--modes takes per-record and/or batched")
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", "bench/dicom.py", *sys.argv[1:]]),
        "screen": "flag",
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "rows": [],
    }
    for mode in modes:
        for associations in (int(a) for a in args.associations.split(",")):
            result["rows"].append(one_run(args.instances, mode, associations))
            print(json.dumps(result["rows"][-1]), flush=True)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
