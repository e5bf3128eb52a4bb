"""A few thousand seeded inputs per fuzz target; ``make fuzz`` runs the long mode.

FUZZ_SEED picks another seed (default 0), FUZZ_SCALE multiplies the per-target counts. Every
failure is printed with its reproducer before the test fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzz import _harness
from fuzz.targets import TARGETS

SEED = int(os.environ.get("FUZZ_SEED", "0"))
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_target_meets_every_input_with_a_scanseal_error(
    target: _harness.Target, tmp_path: Path
) -> None:
    target.setup(tmp_path)
    try:
        outcome = _harness.run(target, max(1, int(target.test_inputs * SCALE)), SEED)
    finally:
        target.teardown()
    reports = [f.report(target.stateful) for f in outcome.distinct.values()]
    assert not outcome.failures, f"{outcome.failures} failing inputs\n" + "\n\n".join(reports)
