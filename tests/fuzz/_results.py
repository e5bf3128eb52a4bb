"""The Fuzzing section of docs/RESULTS.md: one row per target, merged across runs of ``make fuzz``.

``make bench`` renders the rest of RESULTS.md and keeps this section as it finds it
(bench/evaluate.py), so the two never overwrite each other's figures.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

from fuzz._harness import RSS_LIMIT, TIMEOUT, Outcome

HEADING = "## Fuzzing"
_COLUMNS = ("target", "inputs", "failures", "known issues", "seconds", "slowest input",
            "RSS growth", "seed", "run")  # fmt: skip


def write(path: Path, outcomes: list[Outcome], order: list[str]) -> None:
    """Replace (or append) the Fuzzing section of ``path`` with these outcomes merged in."""
    text = path.read_text("utf-8") if path.exists() else "# Results\n"
    before, old, after = split(text)
    rows = rows_of(old)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for o in outcomes:
        known = ", ".join(f"{k} {v:,}" for k, v in sorted(o.known.items())) or "0"
        rows[o.target] = (
            f"| {o.target} | {o.inputs:,} | {o.failures:,} | {known} | {o.seconds:,.0f} | "
            f"{o.slowest:.2f} s | {o.rss_growth >> 20} MiB | {o.seed} | {when} |"
        )
    write_rows(path, rows, order, before, after)


def write_rows(path: Path, rows: dict[str, str], order: list[str], before: str, after: str) -> None:
    """Write the section of ``rows`` (target -> table line) between ``before`` and ``after``."""
    ranked = sorted(rows, key=lambda n: order.index(n) if n in order else len(order))
    section = "\n".join(
        [
            HEADING,
            "",
            "Written by `make fuzz` (`PYTHONPATH=src:tests python -m fuzz -n N --seed S "
            "[--target T …] --results docs/RESULTS.md`), not by `make bench`; each row is its "
            "target's last run. Each input is a seeded mutation of a real input (tests/fuzz: "
            "byte flips, insertions, truncations, splices, JSON and TOML structure, DICOM header "
            "values, signed HTTP requests to every route, hostile gateway answers to the client); "
            "it fails when anything but a "
            "ScanSealError escapes, an HTTP answer is 5xx, one input takes over "
            f"{TIMEOUT:.0f} s or RSS grows by over {RSS_LIMIT >> 30} GiB. *Known issues* are "
            "faults the harness's KNOWN_ISSUES list counts apart while they are fixed in their "
            "own packages; the list is empty, so any such fault is a failure. "
            "`make test` runs 1,000 to 3,000 inputs per target. "
            "*Seconds* are wall-clock time on a shared machine, so under load "
            "they overstate what the inputs cost.",
            "",
            f"Machine: {machine()}.",
            "",
            "| " + " | ".join(_COLUMNS) + " |",
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
            *(rows[name] for name in ranked),
        ]
    )
    path.write_text(before + section + "\n" + after, "utf-8")


def split(text: str) -> tuple[str, str, str]:
    """``text`` around its Fuzzing section: before, the section, after."""
    start = text.find("\n" + HEADING + "\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n", "", ""
    start += 1
    end = text.find("\n## ", start + len(HEADING))
    end = len(text) if end < 0 else end + 1
    return text[:start], text[start:end], ("\n" + text[end:] if end < len(text) else "")


def rows_of(section: str) -> dict[str, str]:
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| ([a-z]+) \| [\d,]+ \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores (shared), {model}, {memory:.1f} GiB RAM, "
        f"Python {platform.python_version()}; load average (1/5/15 min) {load} when last written"
    )
