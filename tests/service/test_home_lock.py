"""One process per role on a home: a second holder of a role's lock is refused, naming the PID
of the first, and the lock is free again once the first process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scanseal._lock import exclusive, home_lock
from scanseal.errors import GatewayUnavailable

SRC = Path(__file__).resolve().parents[2] / "src"
HOLD = """
import sys
from pathlib import Path
from scanseal._lock import exclusive
with exclusive(Path(sys.argv[1]), "scanseal serve"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    lock = tmp_path / "serve.lock"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(GatewayUnavailable) as refused, exclusive(lock, "scanseal serve"):
            pytest.fail("two holders of one lock")
        assert refused.value.reason == (
            f"scanseal serve is already running on {tmp_path} (pid {holder.pid}; lock {lock})"
        )
        assert refused.value.exit_code == 5
    finally:
        holder.communicate("", timeout=30)  # end of input: the holder exits, the lock with it
    with exclusive(lock, "scanseal serve"):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert oct(lock.stat().st_mode & 0o777) == "0o600"


def test_each_role_has_its_own_lock_in_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    refused = pytest.raises(GatewayUnavailable, match=r"scanseal agent is already running")
    with home_lock("serve"), home_lock("agent"), refused, home_lock("agent"):
        pytest.fail("two agents on one home")
    assert sorted(p.name for p in tmp_path.glob("*.lock")) == ["agent.lock", "serve.lock"]
