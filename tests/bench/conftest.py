"""The quick evaluation, run once per session and shared by every test that reads its results.

Running `bench/evaluate.py --quick` measures every section for real and takes about a
minute and a half on two cores; the section tests (test_evaluation.py, test_table4_quick.py,
test_simulation_quick.py) all read its stored JSON instead of measuring again in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation_support import EVALUATION, SECTIONS, quick_run, stored


@pytest.fixture(scope="session")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding the quick run's stored sections, RESULTS.md and plots."""
    out = tmp_path_factory.mktemp("evaluation")
    done, before, after = quick_run(out)
    assert before == after, "the quick evaluation wrote into docs/"
    missing = [s for s in SECTIONS if not (EVALUATION / f"{s}.py").exists()]
    statuses = {s: stored(out, s)["status"] for s in SECTIONS}
    bad = {s: stored(out, s)["error"] for s, status in statuses.items() if status != "ok"}
    # A section whose module is still being written may be "not measured"; nothing else.
    assert set(bad) <= set(missing), (bad, done.stderr[-2000:])
    assert all(statuses[s] == "not measured" for s in missing)
    assert done.returncode == (1 if missing else 0), done.stderr[-2000:]
    return out
