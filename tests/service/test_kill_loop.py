"""Two SIGKILLs of a real batched gateway under mixed uploads, grants and fetches
(tests/kill_loop.py says what is checked after each restart; bench/kill_loop.py is the long
run, in both ledger modes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import kill_loop


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_across_sigkills(tmp_path: Path) -> None:
    tally = kill_loop.run(tmp_path, kills=2, seed=12, mode="batched")
    assert tally.problems == []
    assert tally.kills == 2
    assert tally.uploads > 0
    assert tally.fetches > 0
    assert tally.replays_refused > 0
