"""The long mode: ``python -m fuzz`` (``make fuzz``) with ``tests`` and ``src`` on the path.

    python -m fuzz [-n 100000] [--seed 0] [--target NAME ...]     every target, N inputs each
    python -m fuzz --target NAME --seed S --index I               one input, its full report
    python -m fuzz ... --results docs/RESULTS.md                  merge the counts into RESULTS.md

Prints one line per target (inputs, failures, known issues, seconds, RSS growth) and a Markdown
table for docs/RESULTS.md; the exit status is 1 if any target failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

from fuzz import _harness, _results
from fuzz.targets import TARGETS, by_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", action="append", help="one target (repeatable)")
    parser.add_argument("--index", type=int, help="reproduce this one input (and its report)")
    parser.add_argument("--trace", action="store_true", help="name each input before running it")
    parser.add_argument("--results", type=Path, help="merge the counts into this RESULTS.md")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pydicom warns about every malformed element
    targets = [by_name(n) for n in args.target] if args.target else list(TARGETS)
    rows = []
    failed = False
    for target in targets:
        with tempfile.TemporaryDirectory(prefix=f"scanseal-fuzz-{target.name}-") as work:
            target.setup(Path(work))
            try:
                outcome = _run(target, args)
            finally:
                target.teardown()
        failed = failed or bool(outcome.failures)
        line = (
            f"{target.name:9} inputs {outcome.inputs:7}  failures {outcome.failures:4}  "
            f"known {sum(outcome.known.values()):4}  {outcome.seconds:8.1f} s  "
            f"slowest {outcome.slowest:5.2f} s  RSS +{outcome.rss_growth >> 20} MiB"
        )
        print(line, flush=True)
        for signature, first in outcome.distinct.items():
            print(f"    {signature}  (first: --index {first.index})", flush=True)
        rows.append(outcome)
    if args.index is None:
        _table(rows)
        if args.results is not None:
            _results.write(args.results, rows, [t.name for t in TARGETS])
    return 1 if failed else 0


def _run(target: _harness.Target, args: argparse.Namespace) -> _harness.Outcome:
    def show(finding: _harness.Finding) -> None:  # the first input of each distinct fault
        print(finding.report(target.stateful), file=sys.stderr, flush=True)

    if args.index is None:
        return _harness.run(target, args.n, args.seed, trace=args.trace, on_finding=show)
    if target.stateful:  # the state the input met: every input before it, then it
        _harness.run(target, args.index, args.seed, trace=args.trace)
    outcome = _harness.run(target, 1, args.seed, start=args.index, trace=True, on_finding=show)
    if not outcome.failures:
        print(f"{target.name} input {args.index} of seed {args.seed} passes", file=sys.stderr)
    return outcome


def _table(rows: list[_harness.Outcome]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"\n{machine}, Python {platform.python_version()}, {when}")
    print("\n| target | inputs | failures | known issues | seconds | RSS growth |")
    print("|---|---:|---:|---:|---:|---:|")
    for o in rows:
        known = ", ".join(f"{k} {v}" for k, v in sorted(o.known.items())) or "0"
        print(f"| {o.target} | {o.inputs:,} | {o.failures} | {known} | {o.seconds:.0f} | "
              f"{o.rss_growth >> 20} MiB |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
