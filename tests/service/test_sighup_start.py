"""SIGHUP during the start-up of a real `scanseal serve` child process (a `systemctl reload`
right after a start): ignored until the gateway installs its handler (which rescans the
members directory), never the end of the process.

SIGHUP's default action ends a process, and the gateway's handler comes only once the gateway
is open (passphrase, chain replay, state: seconds). The CLI ignores SIGHUP as soon as it knows
the command is ``serve``, before it imports the command or opens anything. The test watches the
child's signal dispositions (/proc/PID/status) from the moment it is spawned: SIGHUP must be
ignored before it is caught, and SIGHUP sent without pause from then until the handler is
in place must leave it starting, then serving, then stopping cleanly on SIGTERM. (Before
Python runs the CLI's first lines no program can hold SIGHUP off: the interpreter's start.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from gateway_harness import GatewayProcess, make_world
from scanseal.cli import command_of, hoist_root_options

HUP = 1 << (signal.SIGHUP - 1)  # its bit in the SigIgn and SigCgt masks of /proc/PID/status


def _dispositions(pid: int) -> tuple[bool, bool]:
    """Whether process ``pid`` ignores SIGHUP, and whether it catches it (has a handler)."""
    masks = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("SigIgn", "SigCgt"):
            masks[key] = int(value.strip(), 16)
    return bool(masks["SigIgn"] & HUP), bool(masks["SigCgt"] & HUP)


def test_sighup_from_the_first_moments_of_serve_is_ignored(tmp_path: Path) -> None:
    gateway = GatewayProcess(make_world(tmp_path, ["ito"]))
    failed: list[BaseException] = []

    def start() -> None:
        try:
            gateway.start()
        except BaseException as error:  # reported by the test below
            failed.append(error)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        deadline = time.monotonic() + 30
        while gateway.process is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        pid = gateway.process.pid
        spawned = time.monotonic()
        while not any(seen := _dispositions(pid)):  # the interpreter's own start
            assert gateway.process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert seen == (True, False), f"SIGHUP caught before it was ignored: {seen}"
        held_off = time.monotonic() - spawned
        sent = 0
        while _dispositions(pid) == (True, False):  # until the handler is in place
            os.kill(pid, signal.SIGHUP)
            sent += 1
            time.sleep(0.01)
        starting.join()
        assert not failed, (failed, gateway.log.read_text()[-2000:])
        assert sent >= 10, (sent, held_off)  # the start-up was long enough to be tested
        assert gateway.process.poll() is None
        assert _dispositions(pid) == (False, True)  # the members rescan's handler, once ready
        assert httpx.get(f"{gateway.url}/v1/health", timeout=30).status_code == 200
    finally:
        gateway.stop()
        starting.join()
    assert gateway.process.returncode == 0, gateway.log.read_text()[-2000:]


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["serve"], "serve"),
        (["serve", "--passphrase-file", "pw"], "serve"),
        (["--passphrase-fd=3", "serve", "--config", "c.toml"], "serve"),
        (["--passphrase-file", "serve"], None),  # "serve" is the file: no command
        (["keys", "list"], "keys"),
        ([], None),
    ],
)
def test_the_command_is_known_before_it_is_imported(args: list[str], command: str | None) -> None:
    assert command_of(hoist_root_options(args)) == command
