"""A real `scanseal serve`: `port = 0` listens on a port the system picks and says which; a
second serve on the same home is refused at once, naming the first one's PID."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_harness import World, make_world

Serving = tuple[World, "subprocess.Popen[bytes]", int]
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def _serve(world: World, log: Path) -> subprocess.Popen[bytes]:
    env = {**world.env(), "SCANSEAL_GATEWAY_PORT": "0"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scanseal", "serve", "--config", str(world.config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _port_of(process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text())
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"serve did not say its port: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def first(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[World, subprocess.Popen[bytes], int]]:
    world = make_world(tmp_path_factory.mktemp("serve"), ["lee"])
    log = world.home / "first.log"
    process = _serve(world, log)
    try:
        port = _port_of(process, log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield world, process, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_port_zero_listens_on_the_port_it_prints(first) -> None:
    _, _, port = first
    assert port != 0
    assert httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 200


def test_a_second_serve_on_the_same_home_is_refused_at_once(first) -> None:
    world, process, _ = first
    log = world.home / "second.log"
    started = time.monotonic()
    second = _serve(world, log)
    assert second.wait(timeout=30) == 5
    assert time.monotonic() - started < 20  # no chain, state or store opened first
    output = log.read_text()
    assert output.splitlines() == [
        f"error: scanseal serve is already running on {world.home} "
        f"(pid {process.pid}; lock {world.home / 'serve.lock'})"
    ]
    assert process.poll() is None  # the first one serves on
