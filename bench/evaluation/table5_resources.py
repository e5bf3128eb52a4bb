"""Table 5: CPU, peak memory and disk I/O per component during one fixed workload.

The workload: a CT study (50 slices of 512×512 16-bit; 5 in quick mode) screened, sealed and
uploaded by a sender, then fetched and opened by a reader, through one department's
`scanseal serve` (TLS, per-record ledger mode: storeImage, grantAccess and one logAccess per
fetch) whose ledger is a real anvil node and whose store replicates to a real js-ipfs node.
Each component is its own process, sampled from /proc through psutil every 0.1 s while the
workload runs: CPU seconds (user + system), peak RSS and bytes read and written on disk. The
detector runs inside the client; the client measures it as its own phase (loading the model and
screening every image, the work sealing's screen does) with its CPU clock and /proc/self.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from evaluation._common import ROOT, claim, figure_link, num, pyplot, table
from evaluation._systems import Servers, ct_study

TITLE = "Table 5: resources per component"
BUDGET_S = 180
CLIENT = Path(__file__).with_name("_client.py")
#: The paper's Table 5: CPU %, RAM GB, GPU %, disk I/O MB/s.
PAPER = {
    "CNN Authentication": ("12-18", 2.4, "45-60", 15),
    "Encryption/Decryption": ("8-12", 0.8, "0", 25),
    "Blockchain Operations": ("15-22", 1.2, "0", 10),
    "IPFS Storage": ("5-8", 0.6, "0", 40),
    "Total System": ("40-60", 5.0, "45-60", 90),
}
#: Our component beside the paper's row it answers.
ROWS = [
    ("detector (in the client process)", "CNN Authentication"),
    ("client: seal, upload, fetch, open", "Encryption/Decryption"),
    ("chain node (anvil)", "Blockchain Operations"),
    ("IPFS node (js-ipfs)", "IPFS Storage"),
    ("gateway (`scanseal serve`)", None),
]


class Sampler:
    """CPU, peak RSS and disk bytes of some processes (and their children), every 0.1 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        import psutil

        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start = {name: self._counters(p) for name, p in self._procs.items()}
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _family(self, proc: Any) -> list[Any]:
        import psutil

        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _counters(self, proc: Any) -> tuple[float, float, float]:
        cpu = read = write = 0.0
        for member in self._family(proc):
            times, io = member.cpu_times(), member.io_counters()
            cpu += times.user + times.system
            read, write = read + io.read_bytes, write + io.write_bytes
        return cpu, read, write

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            for name, proc in self._procs.items():
                rss = sum(m.memory_info().rss for m in self._family(proc)) / 2**20
                self.peak[name] = max(self.peak[name], rss)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = {name: self._counters(p) for name, p in self._procs.items()}

    def usage(self, name: str, wall: float) -> dict[str, float]:
        (c0, r0, w0), (c1, r1, w1) = self._start[name], self.end[name]
        return _usage(c1 - c0, self.peak[name], (r1 - r0) / 1e6, (w1 - w0) / 1e6, wall)


def _usage(cpu: float, peak: float, read: float, write: float, wall: float) -> dict[str, float]:
    return {
        "cpu_s": cpu, "cpu_pct_of_core": 100 * cpu / wall, "peak_rss_mb": peak,
        "read_mb": read, "write_mb": write, "disk_MBps": (read + write) / wall,
    }  # fmt: skip


def run(quick: bool, work: Path) -> dict[str, Any]:
    count = 5 if quick else 50
    with Servers(work / "servers") as servers:
        ipfs = servers.jsipfs()
        chain, anvil = servers.anvil()
        gateway = servers.gateway("dept", "per-record", ipfs=ipfs, chain=chain)
        study_dir = work / "study"
        ct_study(study_dir, count)
        (work / "client").mkdir()
        pids = {
            "gateway (`scanseal serve`)": gateway.process.pid,
            "chain node (anvil)": anvil.pid,
            "IPFS node (js-ipfs)": servers.daemons[0].pid,
        }
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        command = [sys.executable, str(CLIENT), gateway.url, str(gateway.ca), str(gateway.home),
                   str(study_dir), str(work / "client")]  # fmt: skip
        with Sampler(pids) as sampler:
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900,
                                  check=False)  # fmt: skip
            wall = time.perf_counter() - started
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"client workload exited {done.returncode}: {last}")
    client = json.loads(done.stdout.strip().splitlines()[-1])
    usage = {name: sampler.usage(name, wall) for name in pids}
    for phase, name in [("detector", ROWS[0][0]), ("client", ROWS[1][0])]:
        p = client[phase]
        peak = p["rss_growth_mb"] if phase == "detector" else p["peak_rss_mb"]
        usage[name] = _usage(p["cpu_s"], peak, p["read_mb"], p["write_mb"], p["wall_s"])
    total_cpu = sum(u["cpu_s"] for u in usage.values())
    total_gb = sum(u["peak_rss_mb"] for u in usage.values()) / 1024
    return {
        "images": count,
        "wall_s": wall,
        "usage": usage,
        "total": {"cpu_s": total_cpu,
                  "cpu_pct_of_machine": 100 * total_cpu / wall / (os.cpu_count() or 1),
                  "peak_rss_mb": sum(u["peak_rss_mb"] for u in usage.values())},
        "claims": [
            claim("RAM of the whole system", "5.0 GB",
                  f"{total_gb:.2f} GB (peak RSS, summed)", total_gb <= 5.0),
        ],
    }  # fmt: skip


def render(result: dict[str, Any], figures: Path) -> str:
    usage = result["usage"]
    rows = []
    for ours, theirs in ROWS:
        u = usage[ours]
        paper = PAPER.get(theirs or "", ("–", "–", "–", "–"))
        rows.append(
            (ours, theirs or "–", num(u["cpu_s"], 1), num(u["cpu_pct_of_core"], 0),
             paper[0], num(u["peak_rss_mb"], 0), paper[1], num(u["disk_MBps"], 1), paper[3])
        )  # fmt: skip
    total = result["total"]
    rows.append(
        ("total", "Total System", num(total["cpu_s"], 1),
         num(100 * total["cpu_s"] / result["wall_s"], 0), PAPER["Total System"][0],
         num(total["peak_rss_mb"], 0), PAPER["Total System"][1],
         num(sum(u["disk_MBps"] for u in usage.values()), 1), PAPER["Total System"][3])
    )  # fmt: skip
    header = ["component", "paper's row", "CPU s", "CPU % of one core", "paper CPU %",
              "peak RSS MB", "paper RAM GB", "disk MB/s", "paper disk MB/s"]  # fmt: skip
    _plot(usage, figures)
    return "\n".join(
        [
            f"Workload: {result['images']} CT slices sealed, uploaded, fetched and opened in "
            f"{result['wall_s']:.1f} s. No GPU is used (the paper's GPU column: 45–60 % for its "
            "CNN); the detector runs on one CPU thread. CPU % is of one core over the "
            "component's own wall time (the detector and client phases) or the workload's "
            "(servers); the detector's memory is what loading and running it added to the "
            "client; servers' peak RSS is sampled every 0.1 s during the workload.",
            "",
            table(header, rows, "llrrrrrrr"),
            "",
            f"Reading: the whole system peaks at {total['peak_rss_mb']:,.0f} MB resident "
            f"against the paper's 5.0 GB, and uses {total['cpu_pct_of_machine']:.0f} % of this "
            f"machine's {os.cpu_count()} cores during the workload.",
            "",
            figure_link(figures, "table5-resources.png", "CPU and memory per component"),
        ]
    )


def _plot(usage: dict[str, dict[str, float]], figures: Path) -> None:
    """CPU seconds and peak RSS per component, side by side."""
    plt = pyplot()
    names = [ours for ours, _ in ROWS]
    labels = [n.split(" (")[0].split(":")[0] for n in names]
    fig, (cpu, rss) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    cpu.bar(labels, [usage[n]["cpu_s"] for n in names], color="tab:blue")
    cpu.set_ylabel("CPU seconds")
    rss.bar(labels, [usage[n]["peak_rss_mb"] for n in names], color="tab:orange")
    rss.set_ylabel("peak RSS (MB)")
    for axis in (cpu, rss):
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.suptitle("Resources per component during the workload (this run)", fontsize=10)
    fig.tight_layout()
    figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(figures / "table5-resources.png")
    plt.close(fig)
