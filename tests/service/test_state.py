"""Used nonces: group commit without ever accepting a replay, even across a crash.

The gateway answers a request only after ``use_nonce`` returned True, so these tests attack that
promise directly: concurrent duplicates inside one group, a failed commit, and a process killed
with SIGKILL while groups are being committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scanseal.errors import StorageUnavailable
from scanseal.service import state as state_module
from scanseal.service.state import GatewayState

SRC = Path(__file__).resolve().parents[2] / "src"
LATER = int(time.time()) + 3600


def _hold_first_commit_until(monkeypatch: pytest.MonkeyPatch, queued: int) -> threading.Event:
    """The first commit waits until ``queued`` more nonces are queued behind it, so the second
    group is known to hold them all (otherwise grouping would depend on thread timing)."""
    original = state_module._NonceLog._commit
    first = threading.Event()

    def commit(self: state_module._NonceLog, group: state_module._Group) -> None:
        if not first.is_set():
            first.set()
            deadline = time.monotonic() + 30
            while len(self._queued.rows) < queued and time.monotonic() < deadline:
                time.sleep(0.001)
        original(self, group)

    monkeypatch.setattr(state_module._NonceLog, "_commit", commit)
    return first


def _use_concurrently(
    state: GatewayState, nonces: list[bytes], leading: threading.Event
) -> list[bool | BaseException]:
    """The first nonce starts a commit alone; the others then arrive while it is held."""
    results: list[bool | BaseException] = [False] * len(nonces)

    def use(index: int) -> None:
        try:
            results[index] = state.use_nonce(nonces[index], "0xabc", LATER)
        except BaseException as error:
            results[index] = error

    threads = [threading.Thread(target=use, args=(i,)) for i in range(len(nonces))]
    threads[0].start()
    assert leading.wait(30)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_one_fsync_serves_a_group_and_duplicates_in_it_are_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distinct = [os.urandom(32) for _ in range(20)]
    nonces = [distinct[0], *distinct[1:], *distinct[1:6]]  # 5 replays race their originals
    leading = _hold_first_commit_until(monkeypatch, len(nonces) - 1)
    state = GatewayState(tmp_path / "gw.sqlite3")
    try:
        results = _use_concurrently(state, nonces, leading)
        assert state.nonce_commits == 2  # the first alone, then everyone else in one group
        served = [nonces[i] for i, ok in enumerate(results) if ok is True]
        assert sorted(served) == sorted(distinct)  # each nonce served exactly once
        assert sum(ok is False for ok in results) == 5
        assert not state.use_nonce(distinct[7], "0xabc", LATER)
    finally:
        state.close()


def test_failed_commit_serves_nobody_in_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = GatewayState(tmp_path / "gw.sqlite3")
    original = state_module._NonceLog._insert
    calls = {"n": 0}

    def failing(self: state_module._NonceLog, row: tuple[bytes, str, int]) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(self, row)

    monkeypatch.setattr(state_module._NonceLog, "_insert", failing)
    try:
        first = state.use_nonce(os.urandom(32), "0xabc", LATER)
        assert first is True
        lost = os.urandom(32)
        with pytest.raises(StorageUnavailable, match="disk full"):
            state.use_nonce(lost, "0xabc", LATER)
        # rolled back: the request was never served, and its nonce is not half-recorded
        assert state.use_nonce(lost, "0xabc", LATER) is True
        assert state.use_nonce(lost, "0xabc", LATER) is False
    finally:
        state.close()


_CHILD = """
import os, signal, sys, threading
from pathlib import Path
from scanseal.service.state import GatewayState
state = GatewayState(Path(sys.argv[1]))
lock = threading.Lock()
acknowledged = 0
def worker():
    global acknowledged
    while True:
        nonce = os.urandom(32)
        if state.use_nonce(nonce, "0xabc", int(sys.argv[2])):
            with lock:
                os.write(1, nonce.hex().encode() + b"\\n")
                acknowledged += 1
                if acknowledged == 300:
                    os.kill(os.getpid(), signal.SIGKILL)  # mid-flight: other groups committing
for _ in range(16):
    threading.Thread(target=worker, daemon=True).start()
threading.Event().wait()
"""


def test_every_acknowledged_nonce_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(LATER)],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    acknowledged = [bytes.fromhex(line) for line in child.stdout.decode().split()]
    assert len(acknowledged) >= 300
    state = GatewayState(path)
    try:
        assert state.nonce_commits == 0
        assert not any(state.use_nonce(nonce, "0xabc", LATER) for nonce in acknowledged)
    finally:
        state.close()


def test_record_rows_kept_in_memory_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_module, "_RECORDS_KEPT", 2)
    gateway_state = GatewayState(tmp_path / "gateway.sqlite3")
    try:
        rows = [state_module.StoredRecord(f"m{i}", f"e{i}", "0xowner") for i in range(5)]
        for row in rows:
            gateway_state.add_record(row)
        for _ in range(2):  # the second pass reads evicted rows back from the database
            assert [gateway_state.record(row.manifest_cid) for row in rows] == rows
            assert len(gateway_state._records) == 2
        assert gateway_state.record("absent") is None
    finally:
        gateway_state.close()
