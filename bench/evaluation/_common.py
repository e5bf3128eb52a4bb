"""Helpers the section modules share: markdown tables, verdicts, plots, bench subprocesses.

Nothing here measures; it only formats results and runs the existing bench scripts, so each
section module stays a short description of what it measures and how it reads.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A markdown table; ``align`` holds one of l/r per column (default: first l, others r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(value: object, digits: int = 1) -> str:
    """``0.962`` → ``96.2 %``; anything missing or not a number → ``–``."""
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return f"{100 * value:.{digits}f} %"


def num(value: object, digits: int = 2, unit: str = "") -> str:
    """A number with ``digits`` decimals and an optional unit; ``–`` when missing."""
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def verdict(met: bool | None) -> str:
    """The reading of a target, computed from the numbers."""
    return "–" if met is None else ("**met**" if met else "**not met**")


def claim(what: str, paper: str, scanseal: str, met: bool | None) -> dict[str, Any]:
    """One row of the summary table ("paper vs ScanSeal") at the top of RESULTS.md; a
    section returns a list of them under ``claims``."""
    return {"what": what, "paper": paper, "scanseal": scanseal, "met": met}


def figure_link(figures: Path, name: str, alt: str) -> str:
    """Markdown for a PNG in ``figures``, linked relative to the directory holding RESULTS.md."""
    return f"![{alt}]({figures.parent.name}/{figures.name}/{name})"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display), imported only when plotting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(
    figures: Path,
    name: str,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
) -> Path:
    """Grouped bars, one group per label, one colour per series; returns the PNG's path."""
    plt = pyplot()
    figures.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    width = 0.8 / max(len(series), 1)
    for index, (legend, values) in enumerate(series.items()):
        xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [0 if v is None or math.isnan(v) else v for v in values], width, label=legend)
    ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = figures / name
    fig.savefig(path)
    plt.close(fig)
    return path


def bench_script(
    script: str, args: Sequence[str], json_out: Path | None, timeout: float
) -> tuple[dict[str, Any], str, float]:
    """Run ``bench/SCRIPT`` with this interpreter; returns (its JSON, its stdout, seconds).

    The JSON is read from ``json_out`` when the script writes one, else from the last JSON
    document on its stdout. A non-zero exit raises RuntimeError with the last line of stderr.
    """
    command = [sys.executable, str(BENCH / script), *args]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"bench/{script} exited {done.returncode}: {last}")
    if json_out is not None and json_out.exists():
        return json.loads(json_out.read_text("utf-8")), done.stdout, seconds
    return last_json(done.stdout), done.stdout, seconds


def last_json(text: str) -> dict[str, Any]:
    """The last JSON object printed on ``text``: a one-line document or an indented block."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    index = 0
    while (start := text.find("{", index)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(value, dict):
            found = value
        index = end
    return found


def shown_command(script: str, args: Sequence[str]) -> str:
    """The command a reader types to rerun one bench script alone."""
    return " ".join(["python", f"bench/{script}", *args])


def replace_section(path: Path, heading: str, text: str) -> None:
    """Replace the section of ``path`` (a RESULTS.md) under ``heading`` with ``text``, or
    append it: how a bench outside ``make bench`` writes its kept section."""
    page = path.read_text("utf-8")
    start = page.find("\n" + heading + "\n")
    if start < 0:
        path.write_text(page.rstrip("\n") + "\n\n" + text, "utf-8")
        return
    end = page.find("\n## ", start + 1)
    rest = "" if end < 0 else page[end:]
    path.write_text(page[: start + 1] + text + rest, "utf-8")
