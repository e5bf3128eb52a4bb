"""``scanseal console`` refusing to start: one line and the usual exit code, nothing served."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from console_harness import ConsoleProcess
from gateway_harness import GatewayProcess, World, free_port


def _console(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanseal", "console", "--no-browser", *args],
        env=world.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_no_gateway_is_exit_5(world: World) -> None:
    done = _console(world, "--as", "lee", "--gateway", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 5
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert "console:" not in done.stdout


def test_a_port_in_use_is_exit_5(world: World, gateway: GatewayProcess) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        done = _console(world, "--as", "lee", "--gateway", gateway.url, "--port", port)
    assert done.returncode == 5
    assert done.stderr.strip() == f"error: 127.0.0.1:{port}: the port is in use"


def test_an_unknown_identity_is_not_found(world: World, gateway: GatewayProcess) -> None:
    done = _console(world, "--as", "nobody", "--gateway", gateway.url)
    assert done.returncode == 6
    assert done.stderr.startswith("error: no identity named 'nobody'")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_fixed_port(world: World, gateway: GatewayProcess, record: str) -> None:
    process = ConsoleProcess(world, gateway, "lee")
    port = free_port()
    process.extra = ["--port", str(port)]
    process.start()
    try:
        assert process.port == port
    finally:
        process.stop()


def test_without_a_display_no_text_browser_spends_the_token(
    world: World, gateway: GatewayProcess, record: str
) -> None:
    process = ConsoleProcess(world, gateway, "lee")
    process.browser = True  # no --no-browser, and no DISPLAY in the environment
    process.start()
    try:
        assert process.process is not None
        assert process.process.stdout is not None
        line = process.process.stdout.readline()
        assert line.strip() == "console: no graphical display: open the link in your browser"
        assert httpx.get(process.url).status_code == 303  # the token is still unspent
    finally:
        process.stop()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_opened_plaintext_is_private_and_gone_when_the_console_stops(
    world: World, gateway: GatewayProcess, record: str, how: int
) -> None:
    process = ConsoleProcess(world, gateway, "lee").start()
    try:
        with httpx.Client(base_url=process.base) as browser:
            browser.get(process.url)
            page = browser.get("/verify").text
            csrf = re.search(r'name="csrf" value="([\w-]+)"', page)
            assert csrf is not None
            assert (
                browser.post(f"/records/{record}/open", data={"csrf": csrf[1]}).status_code == 303
            )
            secret = world.people["lee"].account.key.hex()
            for path in ("/", f"/records/{record}", f"/audit?record={record}", "/health"):
                assert secret.removeprefix("0x") not in browser.get(path).text
        opened = list(Path(tempfile.gettempdir()).glob(f"scanseal-console-*/{record}/image"))
        assert len(opened) == 1
        assert opened[0].stat().st_mode & 0o077 == 0
        assert opened[0].parent.parent.stat().st_mode & 0o077 == 0
    finally:
        process.stop(how)
    assert process.process is not None
    assert process.process.returncode == 0  # a stop, not a failure
    assert not opened[0].exists()
    assert not opened[0].parent.parent.exists()
