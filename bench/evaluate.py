"""Run the evaluation: the paper's tables measured on this machine, then docs/RESULTS.md.

    python bench/evaluate.py [--quick] [--only a,b] [--render-only] [--out DIR]

Each section of ``bench/evaluation`` (its SECTIONS list) is run in turn; its result is stored as
JSON in ``--out`` (bench/out/evaluation by default) together with the machine, the UTC date,
the load average before and after, the duration and this command. Then RESULTS.md is rendered
from the stored results alone: into docs/ (plots into docs/img/results/) for a full run, into
the out directory for ``--quick``, which never touches docs/. ``--render-only`` skips measuring.
A section that fails is rendered as failed with its one-line error and the exit status is 1:
a table is never silently missing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the anvil launcher the tests use (devnode)

from evaluation import SECTIONS  # noqa: E402
from evaluation._common import table  # noqa: E402

DOCS = ROOT / "docs"
DEFAULT_OUT = BENCH / "out" / "evaluation"
console = Console(stderr=True)


@dataclass
class Outcome:
    """One section's stored result: status is ok, failed or not measured."""

    name: str
    title: str
    status: str
    error: str
    result: dict[str, Any]
    run: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.name, "title": self.title, "status": self.status,
            "error": self.error, "run": self.run, "result": self.result,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            str(data["section"]), str(data["title"]), str(data["status"]),
            str(data.get("error", "")), dict(data.get("result") or {}), dict(data.get("run") or {}),
        )  # fmt: skip


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, CPU model, RAM, OS, Python and Node."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = line.split("=", 1)[1].strip('"')
    node = "not installed"
    if shutil.which("node"):
        done = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        node = done.stdout.strip() or node
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(ram, 1), "os": system,
        "python": platform.python_version(), "node": node,
    }  # fmt: skip


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info.get('nproc')} cores (`nproc`), {info.get('cpu')}, {info.get('ram_gib')} GiB RAM, "
        f"{info.get('os')}, Python {info.get('python')}, Node {info.get('node')}"
    )


def load_module(name: str) -> ModuleType | None:
    """The section's module, or None when its file does not exist (yet)."""
    if not (BENCH / "evaluation" / f"{name}.py").exists():
        return None
    return importlib.import_module(f"evaluation.{name}")


def measure(name: str, quick: bool, command: str, info: dict[str, Any]) -> Outcome:
    """Run one section in a scratch directory; any exception becomes a failed outcome."""
    run: dict[str, Any] = {
        "machine": info, "quick": quick, "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    started = time.perf_counter()
    title, status, error, result = name, "ok", "", {}
    try:
        module = load_module(name)
        if module is None:
            status, error = "not measured", f"bench/evaluation/{name}.py does not exist"
        else:
            title = str(module.TITLE)
            run["budget_s"] = getattr(module, "BUDGET_S", None)
            with tempfile.TemporaryDirectory(prefix=f"scanseal-eval-{name}-") as work:
                result = dict(module.run(quick, Path(work)))
    except Exception as error_:  # every failure is reported, none is fatal to the others
        status, error = "failed", one_line(error_)
    except KeyboardInterrupt:  # stopped by hand: stored as such, and the run ends here
        status, error = "failed", f"interrupted after {time.perf_counter() - started:.0f} s"
        run["interrupted"] = True
    run["duration_s"] = round(time.perf_counter() - started, 1)
    run["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return Outcome(name, title, status, error, result, run)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"[:400]


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    slug = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return slug.replace(" ", "-")


def render_section(outcome: Outcome, figures: Path) -> str:
    """The section's heading, its own markdown (or why there is none), and how it was run."""
    parts = [f"## {outcome.title}", ""]
    if outcome.status == "ok":
        try:
            module = load_module(outcome.name)
            if module is None:
                raise FileNotFoundError(f"bench/evaluation/{outcome.name}.py does not exist")
            parts.append(module.render(outcome.result, figures).rstrip())
        except Exception as error:
            outcome.status, outcome.error = "failed", "rendering: " + one_line(error)
    if outcome.status != "ok":
        parts = [f"## {outcome.title}", "", f"**{outcome.status}**: {outcome.error}"]
    parts += ["", run_line(outcome.run)]
    if outcome.run:
        parts[-1] += f" Rerun this section alone: `python bench/evaluate.py --only {outcome.name}`."
    return "\n".join(parts)


def run_line(run: dict[str, Any]) -> str:
    if not run:
        return ""
    budget = run.get("budget_s")
    over = budget is not None and run.get("duration_s", 0) > budget
    budget_text = f" (budget {budget:.0f} s{', **over budget**' if over else ''})" if budget else ""
    before = "/".join(f"{x:.2f}" for x in run.get("load_before", []))
    after = "/".join(f"{x:.2f}" for x in run.get("load_after", []))
    return (
        f"*Run:* `{run.get('command')}`{' (quick)' if run.get('quick') else ''} · "
        f"{run.get('date')} · {run.get('duration_s')} s{budget_text} · load average "
        f"(1/5/15 min) {before} before, {after} after · {machine_line(run.get('machine', {}))}."
    )


def derived_claims(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary rows for sections that return no ``claims`` of their own, read defensively from
    the fields Table 4 and the simulation store (missing fields give no row)."""
    from evaluation._common import claim, pct

    rows: list[dict[str, Any]] = []
    with contextlib.suppress(KeyError, TypeError, ValueError, StopIteration, ZeroDivisionError):
        if name == "table4_scalability":
            at = next(r for r in result["rows"] if r["users"] == 500)
            rate, mean = float(at["success_rate"]), float(at["mean"])
            rows.append(claim("success at 500 concurrent users", "96.2 %", pct(rate),
                              rate >= 0.962))  # fmt: skip
            rows.append(claim("mean response at 500 users", "9.2 s", f"{mean:.2f} s",
                              mean <= 9.2))  # fmt: skip
        elif name == "simulation":
            rate = float(result["success_rate"])
            rows.append(claim("simulated month: transfer success", "99.7 %", pct(rate),
                              rate >= 0.997))  # fmt: skip
            blocked, planned = int(result["attacks_blocked"]), int(result["attacks_planned"])
            rows.append(claim("simulated month: unauthorized attempts blocked", "23/23",
                              f"{blocked}/{planned}", blocked == planned > 0))  # fmt: skip
            mean = float(result["transfer_s_mean"])
            rows.append(claim("simulated month: mean transfer time", "3.1 s", f"{mean:.2f} s",
                              mean <= 3.1))  # fmt: skip
    return rows


def summary(outcomes: list[Outcome]) -> str:
    """Paper vs ScanSeal: every claim a section reports, with its computed reading."""
    rows = []
    for outcome in outcomes:
        link = f"[{outcome.title}](#{anchor(outcome.title)})"
        claims = None
        if outcome.status == "ok":
            module = load_module(outcome.name)
            from_module = getattr(module, "claims", None)
            claims = (from_module(outcome.result) if callable(from_module) else None) or (
                outcome.result.get("claims") or derived_claims(outcome.name, outcome.result)
            )
        if not claims:
            state = outcome.status if outcome.status != "ok" else "see section"
            rows.append(("–", "–", state, "–", link))
            continue
        for item in claims:
            met = item.get("met")
            reading = "–" if met is None else ("met" if met else "not met")
            rows.append((item["what"], item["paper"], item["scanseal"], reading, link))
    return table(["claim", "paper", "ScanSeal", "reading", "section"], rows, "lllll")


def render(outcomes: list[Outcome], target: Path, figures: Path, command: str) -> None:
    """Write RESULTS.md into ``target`` from stored outcomes alone."""
    sections = [render_section(o, figures) for o in outcomes]
    dates = sorted(str(o.run.get("date")) for o in outcomes if o.run.get("date"))
    info = next((o.run["machine"] for o in outcomes if o.run.get("machine")), machine())
    commands = sorted({str(o.run["command"]) for o in outcomes if o.run.get("command")})
    measured_by = ", ".join(f"`{c}`" for c in commands) or f"`{command}`"
    quick = any(o.run.get("quick") for o in outcomes)
    total = sum(float(o.run.get("duration_s", 0)) for o in outcomes) / 60
    header = [
        "# Results",
        "",
        "<!-- Generated by `make bench` (bench/evaluate.py) from bench/out/evaluation/*.json,"
        " the Fuzzing section by `make fuzz`; do not edit by hand. -->",
        "",
        "The paper's tables, each answered by ScanSeal's own figure measured on this machine in "
        "one run, beside the paper's figure and the baselines. Every number below comes from "
        "`make bench` (`python bench/evaluate.py`), which measures, stores each section's result "
        "as JSON and renders this page; `python bench/evaluate.py --render-only` re-renders it "
        "from the stored results. Readings such as *met* are computed from the numbers. Design "
        "notes and past experiments live in the component documents (docs/STORAGE.md, "
        "docs/LEDGER.md, docs/PROTOCOL.md, docs/DICOM.md, docs/MODEL.md).",
        "",
        f"Machine: {machine_line(info)}. Run: {dates[0] if dates else '–'} to "
        f"{dates[-1] if dates else '–'}, measured by {measured_by}"
        + f"; {total:.1f} minutes of measuring in all (budget: {2 if quick else 30})"
        + (" — **quick variant, small sizes: not the published figures**." if quick else "."),
        "",
        "## Summary: paper vs ScanSeal",
        "",
        summary(outcomes),
        "",
    ]
    target.mkdir(parents=True, exist_ok=True)
    text = "\n".join(header) + "\n" + "\n\n".join(sections) + "\n" + kept_sections(target)
    (target / "RESULTS.md").write_text(text, "utf-8")


KEPT_HEADINGS = ("## Study send and fetch", "## Fuzzing", "## Soak")
"""Sections other commands write into RESULTS.md (``make bench-study``, ``make fuzz``, ``make
soak``); rendering keeps them."""


def kept_sections(target: Path) -> str:
    """The kept sections of the RESULTS.md already in ``target``, as they are."""
    path = target / "RESULTS.md"
    if not path.exists():
        return ""
    parts = ("\n" + path.read_text("utf-8")).split("\n## ")
    kept = [
        "## " + part.rstrip("\n")
        for part in parts[1:]
        if "## " + part.split("\n")[0] in KEPT_HEADINGS
    ]
    return "".join("\n" + section + "\n" for section in kept)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, ≤ 2 minutes in all")
    parser.add_argument("--only", default="", help="comma-separated section names")
    parser.add_argument("--render-only", action="store_true", help="re-render stored results")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results are stored")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    args.sections = chosen
    return args


def stored(out: Path, name: str) -> Outcome:
    path = out / f"{name}.json"
    if not path.exists():
        return Outcome(name, name, "not measured", f"no stored result {path.name}", {}, {})
    return Outcome.from_json(json.loads(path.read_text("utf-8")))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "bench/evaluate.py", *(sys.argv[1:] if argv is None else argv)])
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        info = machine()
        columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
        with Progress(*columns, console=console) as progress:
            for name in args.sections:
                task = progress.add_task(f"{name}: measuring", total=1)
                outcome = measure(name, args.quick, command, info)
                (out / f"{name}.json").write_text(
                    json.dumps(outcome.to_json(), indent=2) + "\n", "utf-8"
                )
                if outcome.run.get("interrupted"):
                    console.print(f"[red]{name}: {outcome.error}; stopping")
                    return 130
                mark = "[green]ok" if outcome.status == "ok" else f"[red]{outcome.status}"
                progress.update(task, completed=1, description=f"{name}: {mark}[/]")
                if outcome.status != "ok":
                    progress.console.print(f"  {name}: {outcome.error}")
    outcomes = [stored(out, name) for name in SECTIONS]
    quick = args.quick or any(o.run.get("quick") for o in outcomes)
    target = out if quick else DOCS
    figures = target / "img" / "results"
    render(outcomes, target, figures, command)
    console.print(f"wrote {target / 'RESULTS.md'}")
    bad = [o.name for o in outcomes if o.name in args.sections and o.status != "ok"]
    if bad:
        console.print(f"[red]not ok: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
