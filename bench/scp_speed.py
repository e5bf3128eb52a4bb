"""Storage SCP speed beside the anchors: one CT series pushed by dcmtk's dcmsend, in one run.

    python bench/scp_speed.py [--instances 200] [--associations 1,4] [--json FILE]
                              [--targets scanseal,orthanc,storescp]

The series is 512 × 512 16-bit CT slices (CT_small's header, a synthetic body and fresh SOP
Instance UIDs per slice, one study; bench/dicom.py's ``ct_series``). It is pushed by `dcmsend`
(one process per association, each with its share of the files) into, in turn:

- ScanSeal's Storage SCP: a real `scanseal serve` (batched ledger, embedded chain and store,
  tamper screen ``flag``, the default ``acknowledge = "durable"``): an instance counts once its
  C-STORE answer is Success, which comes once it is in the gateway's encrypted spool; the row
  also gives the time until every instance was screened, sealed, stored and registered (the
  spool empty in ``/v1/health``), ``registered_seconds`` and ``registered_per_second``;
- Orthanc (Debian's, storage uncompressed), the PACS a department would run;
- dcmtk's `storescp` (``--fork``, writing each file), the floor of what C-STORE costs here.

Every dcmtk process, Orthanc included, runs with ``TCP_NODELAY=1`` (dcmtk's default keeps
Nagle's algorithm on, which costs a delayed ACK per instance); ScanSeal's SCP sets it on every
association itself. Orthanc and storescp listen on all interfaces, so the whole bench re-runs
itself inside a private network namespace (``unshare -n``, as tests/dicom/test_engines.py
does). Each target is started fresh for each association count; every row counts the
instances the sender's report marks as stored and checks the target holds that many, and the
target's CPU time per stored instance (user and system, its children included), which other
work on a shared machine does not change as it changes the wall time, and the load average it
was measured at; ScanSeal's row splits the CPU spent while the series was pushed between its
acceptor processes (which answer the C-STOREs) and the gateway process. The JSON's
``verdict`` (also printed) gives ScanSeal's rate as a share of Orthanc's in the same run per
association count, the figure load changes least, and whether the targets are met: at least
45 instances/s and half of Orthanc's rate at the most associations, more associations faster
than the fewest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dicom import ct_series, drained, free_port, machine, screened, start_gateway
from evaluation._systems import stop, wait_until
from evaluation.scp_targets import verdict

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("scanseal", "orthanc", "storescp")
NODELAY = dict(os.environ, TCP_NODELAY="1")
_SUCCESS = re.compile(r"\* with status SUCCESS\s*:\s*(\d+)")


Target = tuple[int, Callable[[], int], int, Callable[[], None] | None]
"""A target's DICOM port, its count of stored instances, its PID and (ScanSeal) a wait until
every acknowledged instance is registered."""


@contextmanager
def scanseal(home: Path) -> Iterator[Target]:
    """A `scanseal serve` with the SCP (batched); yields its port, a count of stored instances
    whose manifest carries the screen's verdict (read after it stopped) and a wait until its
    spool is empty."""
    home.mkdir()
    process, url, port = start_gateway(home, "batched")
    stopped = False

    def held() -> int:
        nonlocal stopped
        if not stopped:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
            stopped = True
        return screened(home)

    try:
        yield port, held, process.pid, lambda: drained(url)
    finally:
        if not stopped:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


@contextmanager
def orthanc(home: Path) -> Iterator[Target]:
    """Orthanc as a child process with its own storage; yields its DICOM port and a count of
    the instances it holds."""
    home.mkdir()
    http, dicom = free_port(), free_port()
    config = {
        "Name": "BENCH", "StorageDirectory": str(home / "db"), "IndexDirectory": str(home / "db"),
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomAlwaysAllowStore": True, "DicomCheckCalledAet": False,
        "StorageCompression": False, "Plugins": [],
    }  # fmt: skip
    (home / "orthanc.json").write_text(json.dumps(config), "utf-8")
    with (home / "orthanc.log").open("ab") as log:
        process = subprocess.Popen(
            ["Orthanc", str(home / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
            env=NODELAY,
        )  # fmt: skip
    url = f"http://127.0.0.1:{http}"
    try:
        wait_until(lambda: httpx.get(url + "/system", timeout=1).status_code == 200, process)
        count = lambda: int(httpx.get(url + "/statistics").json()["CountInstances"])  # noqa: E731
        yield dicom, count, process.pid, None
    finally:
        stop(process)


@contextmanager
def storescp(home: Path) -> Iterator[Target]:
    """dcmtk's storescp writing every instance (one child per association); yields its port
    and a count of the files it wrote."""
    (home / "in").mkdir(parents=True)
    port = free_port()
    with (home / "storescp.log").open("ab") as log:
        process = subprocess.Popen(
            ["storescp", "--fork", "-od", str(home / "in"), str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=NODELAY,
        )  # fmt: skip
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError((home / "storescp.log").read_text()[-2000:])
        yield port, lambda: sum(1 for _ in (home / "in").iterdir()), process.pid, None
    finally:
        stop(process)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of process ``pid``, of its children it has reaped and of
    those still running (ScanSeal's acceptor processes): a figure the other work on a shared
    machine does not change, unlike the wall time."""
    return sum(cpu_parts(pid))


def cpu_parts(pid: int) -> tuple[float, float]:
    """The CPU seconds of ``pid`` itself (with its reaped children) and of its running
    children."""
    own = children = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if stat.parent.name == str(pid):
            own += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        elif fields[1] == str(pid):
            children += sum(int(fields[i]) for i in (11, 12))
    tick = os.sysconf("SC_CLK_TCK")
    return own / tick, children / tick


def push(port: int, paths: list[Path], associations: int, work: Path) -> tuple[int, float]:
    """`dcmsend` over ``associations`` concurrent associations (one process each); the
    instances the senders' reports count as stored with Success, and the wall time."""
    shares = [paths[i::associations] for i in range(associations)]
    started = time.perf_counter()
    senders = []
    for n, share in enumerate(shares):
        report = work / f"dcmsend-{n}.txt"
        command = ["dcmsend", "-aet", "BENCH", "-aec", "TARGET", "+crf", str(report),
                   "127.0.0.1", str(port), *map(str, share)]  # fmt: skip
        senders.append((subprocess.Popen(command, env=NODELAY, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE), report))  # fmt: skip
    stored = 0
    for sender, report in senders:
        _out, err = sender.communicate(timeout=900)
        found = _SUCCESS.search(report.read_text("utf-8")) if report.exists() else None
        if found is None:
            raise RuntimeError(f"dcmsend left no summary: {err.decode()[-500:]}")
        stored += int(found.group(1))
    return stored, time.perf_counter() - started


def one_row(target: str, paths: list[Path], associations: int, work: Path) -> dict[str, Any]:
    opener = {"scanseal": scanseal, "orthanc": orthanc, "storescp": storescp}[target]
    with opener(work / target) as (port, held, pid, registered):
        before = cpu_seconds(pid)
        parts = cpu_parts(pid)
        started = time.perf_counter()
        stored, seconds = push(port, paths, associations, work)
        pushed = [after - was for after, was in zip(cpu_parts(pid), parts, strict=True)]
        if registered is not None:
            registered()
        done = time.perf_counter() - started
        time.sleep(0.2)  # storescp's children are reaped (and counted) once they exit
        cpu = cpu_seconds(pid) - before
        holds = held()
    if holds != stored:
        raise SystemExit(f"{target}: the senders count {stored} stored, the target holds {holds}")
    row = {
        "target": target,
        "associations": associations,
        "instances": len(paths),
        "stored": stored,
        "series_seconds": round(seconds, 2),
        "instances_per_second": round(stored / seconds, 1),
        "cpu_ms_per_instance": round(1000 * cpu / max(stored, 1), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if registered is not None:  # the answers' CPU: acceptor processes, the gateway beside them
        row["push_cpu_ms_per_instance"] = {
            "gateway": round(1000 * pushed[0] / max(stored, 1), 1),
            "acceptors": round(1000 * pushed[1] / max(stored, 1), 1),
        }
        row["registered_seconds"] = round(done, 2)
        row["registered_per_second"] = round(stored / done, 1)
    return row


def measure(instances: int, associations: list[int], targets: list[str]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="scanseal-bench-scp-") as scratch:
        root = Path(scratch)
        for count in associations:
            series = root / f"series-{count}"
            series.mkdir()
            paths = ct_series(series, instances)  # fresh UIDs for each association count
            for target in targets:
                work = root / f"{target}-{count}"
                work.mkdir()
                rows.append(one_row(target, paths, count, work))
                print(json.dumps(rows[-1]), flush=True)
    return rows


def in_namespace() -> None:
    """Re-run this command inside a private network namespace with only loopback up."""
    if os.environ.get("SCANSEAL_BENCH_NETNS") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    if shutil.which("unshare") is None:
        raise SystemExit("scp_speed needs unshare (util-linux) for its network namespace")
    env = dict(os.environ, SCANSEAL_BENCH_NETNS="1")
    command = ["unshare", "-n", sys.executable, *sys.argv]
    raise SystemExit(subprocess.run(command, env=env, check=False).returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--associations", default="1,4")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "scp_speed.json")
    args = parser.parse_args()
    targets = args.targets.split(",")
    if not set(targets) <= set(TARGETS):
        parser.error(f"--targets takes {', '.join(TARGETS)}")
    missing = [tool for tool in ("dcmsend", "storescp", "Orthanc") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make dicom-tools`")
    in_namespace()
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", "bench/scp_speed.py", *sys.argv[1:]]),
        "sender": "dcmsend (dcmtk), TCP_NODELAY=1",
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    associations = [int(a) for a in args.associations.split(",")]
    result["rows"] = measure(args.instances, associations, targets)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["verdict"] = verdict(result["rows"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    for count, ratio in result["verdict"]["scanseal_to_orthanc"].items():
        print(f"{count} association(s): ScanSeal at {ratio:.1%} of Orthanc's rate")
    print(json.dumps(result["verdict"]))
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
