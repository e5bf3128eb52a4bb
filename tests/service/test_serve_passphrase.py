"""``scanseal serve`` unlocked without the passphrase in its environment: handed on a pipe
(``--passphrase-fd``, as a secrets manager or ``systemd-ask-password`` would) or in a file
(``--passphrase-file``, as systemd's ``LoadCredential=`` gives it). A real child process with no
``SCANSEAL_PASSPHRASE`` and no terminal reaches ``/v1/health`` 200; the wrong passphrase on the
pipe exits 4 with one line before anything listens."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_harness import PASSPHRASE, GatewayProcess, World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, ["ito"])


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):  # already closed
            os.close(fd)


def _healthy(gateway: GatewayProcess) -> None:
    answer = httpx.get(f"{gateway.url}/v1/health", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["gateway"] == gateway.world.people["gateway"].address


def test_passphrase_on_a_pipe(world: World, pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, PASSPHRASE.encode() + b"\n")
    os.close(write)
    gateway = GatewayProcess(world, root_args=["--passphrase-fd", str(read)], pass_fds=[read])
    gateway.start()
    try:
        _healthy(gateway)
    finally:
        gateway.stop()


def test_passphrase_in_a_file(world: World, tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n", "utf-8")
    secret.chmod(0o600)
    gateway = GatewayProcess(world, root_args=["--passphrase-file", str(secret)])
    gateway.start()
    try:
        _healthy(gateway)
    finally:
        gateway.stop()
    assert "group or others" not in gateway.log.read_text("utf-8")


def test_wrong_passphrase_on_a_pipe_exits_4(world: World, pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, b"not the passphrase\n")
    os.close(write)
    gateway = GatewayProcess(world, root_args=["--passphrase-fd", str(read)], pass_fds=[read])
    with pytest.raises(RuntimeError, match="gateway exited"):
        gateway.start()
    assert gateway.process is not None
    assert gateway.process.wait(timeout=30) == 4
    lines = gateway.log.read_text("utf-8").strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
