"""Running the shell recipes of a docs/ page: the blocks marked ``<!-- recipe: NAME -->``.

A recipe is every block with that marker, in page order, run as one ``bash -euo pipefail``
script with ``scanseal`` on the PATH (this checkout's sources), no ``SCANSEAL_*`` variable from
the caller, and the variables the test chooses. The script runs in its own process group: its
EXIT trap stops every background job it started by PID, and whatever is left when it ends
(or when its time is up) is killed through that group, whose id is the script's PID. A page
starts its servers as simple commands (``scanseal serve &``, not a shell function in the
background), so that the PID of each job is the server's own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
SRC = Path(__file__).resolve().parents[2] / "src"
_MARKER = re.compile(
    r"^<!-- recipe: (?P<name>[a-z0-9-]+) -->\n```sh\n(?P<body>.*?)^```$", re.M | re.S
)
_PROLOGUE = """set -euo pipefail
cleanup() {
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    wait || true
}
trap cleanup EXIT
"""


def recipe(page: str, name: str) -> list[str]:
    """The bodies of the blocks marked ``recipe: NAME`` in ``docs/PAGE``, in order."""
    text = (DOCS / page).read_text("utf-8")
    return [m["body"] for m in _MARKER.finditer(text) if m["name"] == name]


@dataclass
class Run:
    code: int
    """The script's exit status; -1 when its time ran out."""
    log: str
    seconds: float
    left_behind: bool
    """Whether a process of the script outlived it (its trap did not stop everything)."""


def run_recipe(blocks: list[str], workdir: Path, variables: dict[str, str], timeout: float) -> Run:
    """Run ``blocks`` as one script in ``workdir``; its output and stderr go to one log."""
    bin_dir = workdir / ".bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "scanseal"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scanseal "$@"\n', "utf-8")
    shim.chmod(0o755)
    script = workdir / ".recipe.sh"
    script.write_text(_PROLOGUE + "\n".join(blocks), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANSEAL_")}
    env.update(variables)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(SRC)
    env["COLUMNS"] = "200"
    log_path = workdir / ".recipe.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(["bash", str(script)], cwd=workdir, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGTERM)  # the trap stops the jobs it started
            process.wait(timeout=60)
            code = -1
        finally:
            left_behind = _kill_group(process.pid, signal.SIGKILL)  # anything the trap missed
    log_text = log_path.read_text("utf-8", "replace")
    return Run(code, log_text, time.monotonic() - started, left_behind)


def _kill_group(pgid: int, signum: int) -> bool:
    """Signal every process of the group; whether there was one."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True
