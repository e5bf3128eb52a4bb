"""SIGTERM, as systemd and ``kill`` send it, stops ``scanseal serve`` and ``scanseal agent``
cleanly.

uvicorn handles SIGTERM itself and, once it has shut down, raises the signal again: with the
default handler that ends the process before any ``finally`` runs, so the batched entries still
pending were never anchored and the ledger and state never closed. A real ``serve`` child
process in batched mode, holding pending entries (a batch window far longer than the test),
gets SIGTERM: it exits 0, says in its log that it anchored them, and a gateway started again on
the same home finds nothing pending and the anchor on the chain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fault_support import HANG, Prober
from gateway_harness import PASSPHRASE, SRC, GatewayProcess, World, free_port, make_world
from scanseal.crypto.identity import Keystore

pytestmark = pytest.mark.integration


def _batch(gateway: GatewayProcess) -> dict[str, object]:
    health = httpx.get(f"{gateway.url}/v1/health", timeout=HANG).json()
    batch: dict[str, object] = health["batch"]
    return batch


def _batched_world(root: Path) -> World:
    world = make_world(root, ["ito", "lee"], mode="batched")
    text = world.config.read_text("utf-8").replace("batch_seconds = 1\n", "batch_seconds = 3600\n")
    world.config.write_text(text, "utf-8")
    return world


def test_sigterm_anchors_the_pending_entries_and_exits_0(tmp_path: Path) -> None:
    gateway = GatewayProcess(_batched_world(tmp_path)).start()
    prober = Prober(gateway, tmp_path / "scratch")
    try:
        for _ in range(2):
            prober.ok(prober.upload(prober.seal()))
        assert _batch(gateway)["pending"] == 2
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        code = gateway.process.wait(timeout=30)
    finally:
        prober.close()
        gateway.stop()
    log = gateway.log.read_text("utf-8", errors="replace")
    assert code == 0, log[-3000:]
    assert "shutting down: anchored 2 pending entries" in log, log[-3000:]
    gateway.start()
    try:
        batch = _batch(gateway)
        assert batch["pending"] == 0, batch
        assert batch["anchors"] == 1, batch
        again = Prober(gateway, tmp_path / "scratch-again")
        again.acked = dict(prober.acked)
        again.nothing_lost()
        again.close()
    finally:
        gateway.stop()


def test_sigterm_stops_the_agent_cleanly(tmp_path: Path) -> None:
    """``scanseal agent`` (its gateway unreachable, so it keeps retrying) gets SIGTERM: it
    ends its loop, closes its state (SQLite's -wal file gone: the database was closed, not
    abandoned) and exits 0 with a line saying so."""
    home = tmp_path / "home"
    Keystore(home / "keys", scrypt_n=2**10).create("lee", PASSPHRASE)
    config = home / "agent.toml"
    config.write_text(
        f'[forward]\ngateway = "http://127.0.0.1:{free_port()}"\nidentity = "lee"\n'
        f'destination = "PACS@127.0.0.1:{free_port()}"\npoll_seconds = 0.2\n',
        "utf-8",
    )
    env = {**os.environ, "SCANSEAL_HOME": str(home), "SCANSEAL_PASSPHRASE": PASSPHRASE,
           "PYTHONPATH": str(SRC)}  # fmt: skip
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen(
            [sys.executable, "-m", "scanseal", "agent", "--config", str(config)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "forwarding records granted" not in log.read_text("utf-8", errors="replace"):
            assert agent.poll() is None, log.read_text("utf-8", errors="replace")
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.1)
        time.sleep(0.5)  # a pass or two against the unreachable gateway
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    text = log.read_text("utf-8", errors="replace")
    assert code == 0, text[-3000:]
    assert "forwarding stopped" in text, text[-3000:]
    state = home / "forward" / "forward.sqlite3"
    assert state.exists(), sorted(str(p) for p in home.rglob("*"))
    assert not state.with_name(state.name + "-wal").exists()
