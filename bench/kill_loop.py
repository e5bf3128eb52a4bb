"""The long kill loop: SIGKILL a real ``scanseal serve`` many times under mixed traffic.

    python bench/kill_loop.py --kills 200 [--mode per-record|batched|both] [--seed 1]

Runs tests/kill_loop.py (what is checked after each restart is described there) with a sample
of older records re-checked after each restart, and prints the tally per mode as JSON. Exit
status 1 if any invariant failed. 15 to 40 s per kill on 2 cores, with the load (a gateway
start is most of it): 200 kills in both modes take hours.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--mode", choices=["per-record", "batched", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=20, help="older records re-checked")
    args = parser.parse_args()
    kill_loop = importlib.import_module("kill_loop")  # tests/, first on sys.path
    modes = ["per-record", "batched"] if args.mode == "both" else [args.mode]
    failed = False
    for mode in modes:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="scanseal-kill-loop-") as root:
            tally = kill_loop.run(
                Path(root), kills=args.kills, seed=args.seed, mode=mode, sample=args.sample
            )
        report = {"mode": mode, "seconds": round(time.monotonic() - started, 1)}
        report.update(dataclasses.asdict(tally))
        print(json.dumps(report), flush=True)
        failed = failed or bool(tally.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
