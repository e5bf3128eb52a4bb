"""Helpers for tests that read the quick evaluation's stored results (the fixture that runs it
once per session, `quick`, is in tests/bench/conftest.py).

`bench/evaluate.py --quick --out DIR` stores each section as DIR/<section>.json, renders
DIR/RESULTS.md from those files alone and writes its plots into DIR/img/results/. The helpers
read those three things so that every test checks what the driver actually stored and rendered.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVALUATION = ROOT / "bench" / "evaluation"


def bench_module(relative: str, name: str) -> ModuleType:
    """A file under bench/ imported by path as module ``name``: putting bench/ on sys.path
    would let bench/storage.py shadow tests' `storage`. Registered in sys.modules, where
    dataclasses look their module up."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_sections = bench_module("evaluation/__init__.py", "scanseal_bench_sections")
SECTIONS: tuple[str, ...] = _sections.SECTIONS


def docs_digest() -> str:
    """One hash of docs/RESULTS.md and the plots, to prove a run left docs/ alone."""
    docs = [ROOT / "docs" / "RESULTS.md", *sorted((ROOT / "docs" / "img").rglob("*.png"))]
    return hashlib.sha256(b"".join(p.read_bytes() for p in docs if p.exists())).hexdigest()


def quick_run(out: Path) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """Run the whole quick evaluation into ``out``; the docs/ digest before and after."""
    before = docs_digest()
    done = subprocess.run(
        [sys.executable, "bench/evaluate.py", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    return done, before, docs_digest()


def stored(out: Path, name: str) -> dict[str, Any]:
    """A section's stored file as the driver wrote it: status, error, run and result."""
    data: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    return data


def section_result(out: Path, name: str) -> dict[str, Any]:
    """A section's stored result, after checking the driver recorded a quick run around it."""
    data = stored(out, name)
    run = data["run"]
    assert run["quick"] is True
    assert run["machine"]["nproc"] >= 1
    assert run["machine"]["python"]
    assert run["duration_s"] > 0
    assert len(run["load_before"]) == 3
    section: dict[str, Any] = data["result"]
    return section


def section_text(out: Path, title: str) -> str:
    """The markdown the driver rendered under ``## title`` in RESULTS.md."""
    text = (out / "RESULTS.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def png(out: Path, name: str) -> None:
    """The plot ``name`` was written and is a PNG, not an empty or error file."""
    path = out / "img" / "results" / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
