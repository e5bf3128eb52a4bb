"""A real gateway with shared records, and ``scanseal console`` as a child process against it.

``ConsoleProcess`` runs ``python -m scanseal console --as NAME --gateway URL --no-browser`` in
the world's home, reads the launch URL (with its one-time token) from its stdout, and stops it
by its PID.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from pydicom.data import get_testdata_file

from gateway_harness import GatewayProcess, World

CT = Path(str(get_testdata_file("CT_small.dcm")))
LAUNCH = re.compile(r"console: (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))")


class ConsoleProcess:
    """``scanseal console`` for ``name`` against ``gateway``; ``url``, ``port``, ``token``."""

    def __init__(self, world: World, gateway: GatewayProcess, name: str) -> None:
        self.world, self.gateway, self.name = world, gateway, name
        self.process: subprocess.Popen[str] | None = None
        self.url = self.token = ""
        self.port = 0
        self.extra: list[str] = []
        self.gateway_url = gateway.url
        """The gateway the console talks to (a man in the middle's, for an attack)."""
        self.env: dict[str, str] = {}
        """More environment for the console (a [ledger] that points elsewhere)."""
        self.browser = False
        self.output: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ConsoleProcess:
        command = [sys.executable, "-m", "scanseal", "console", "--as", self.name,
                   "--gateway", self.gateway_url, *self.extra]  # fmt: skip
        if not self.browser:
            command.append("--no-browser")
        env = {k: v for k, v in self.world.env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(self.env)
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        deadline, seen = time.monotonic() + timeout, self.output
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"console exited: {''.join(seen)}")
            seen.append(line)
            found = LAUNCH.search(line)
            if found:
                self.url, self.token = found.group(1), found.group(3)
                self.port = int(found.group(2))
                assert urlsplit(self.url).hostname == "127.0.0.1"
                return self
        self.stop()
        raise RuntimeError(f"console printed no URL: {''.join(seen)}")

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(how)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
