"""A real gateway for the service and security tests: a child process on 127.0.0.1.

``make_world`` creates a SCANSEAL_HOME with a keystore (cheap scrypt), the clinicians' cards in
a members directory and a scanseal.toml; ``GatewayProcess`` runs ``python -m scanseal serve`` on
a free port with this worktree's sources first on the path, waits for /v1/health, and stops the
process by its PID. Restarting reuses the same home, so nonces and the chain persist.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli_support import Result, against_gateway
from scanseal.crypto.identity import Identity, Keystore

SRC = Path(__file__).resolve().parents[1] / "src"
PASSPHRASE = "gateway test passphrase"


@dataclass
class World:
    home: Path
    people: dict[str, Identity]
    cards: dict[str, Path]
    config: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SCANSEAL_HOME=str(self.home),
            SCANSEAL_PASSPHRASE=PASSPHRASE,
            PYTHONPATH=str(SRC) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_world(
    root: Path,
    members: list[str],
    strangers: list[str] = (),  # type: ignore[assignment]
    *,
    mode: str = "per-record",
    extra: str = "",
    ledger_extra: str = "",
) -> World:
    """Identities (gateway, members, strangers), members' cards enrolled, a config file."""
    home = root / "home"
    keystore = Keystore(home / "keys", scrypt_n=2**10)
    people = {name: keystore.create(name, PASSPHRASE) for name in ["gateway", *members]}
    people.update({name: Identity.generate(name) for name in strangers})
    cards_dir = home / "members"
    cards_dir.mkdir()
    cards = {}
    for name, person in people.items():
        path = (cards_dir if name in members else root) / f"{name}.card.json"
        path.write_text(person.card.to_json(), "utf-8")
        cards[name] = path
    config = home / "scanseal.toml"
    config.write_text(
        f'[gateway]\nidentity = "gateway"\nmembers = "{cards_dir}"\ntick_seconds = 0.5\n'
        f'{extra}\n[ledger]\nmode = "{mode}"\nbatch_size = 512\nbatch_seconds = 1\n'
        f"{ledger_extra}\n",
        "utf-8",
    )
    return World(home, people, cards, config)


class GatewayProcess:
    """``scanseal serve`` as a child process; ``url`` once started."""

    def __init__(
        self,
        world: World,
        *,
        scheme: str = "http",
        ca: Path | None = None,
        args: Sequence[str] = (),
        root_args: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.world = world
        self.args = list(args)
        """More options for ``serve`` (``--log-format json``)."""
        self.root_args = list(root_args)
        """Options for ``scanseal`` itself, before ``serve`` (``--passphrase-file F``); with
        any, ``SCANSEAL_PASSPHRASE`` is left out of the environment."""
        self.pass_fds = tuple(pass_fds)
        self.port = free_port()
        self.scheme = scheme
        self.ca = ca
        self.process: subprocess.Popen[bytes] | None = None
        self.log = world.home / "gateway.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        env = self.world.env()
        env["SCANSEAL_GATEWAY_PORT"] = str(self.port)
        if self.root_args:
            del env["SCANSEAL_PASSPHRASE"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scanseal",
                    *self.root_args,
                    "serve",
                    "--config",
                    str(self.world.config),
                    *self.args,
                ],
                env=env,
                stdin=subprocess.DEVNULL,  # no terminal to ask on
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=self.pass_fds,
            )
        deadline = time.monotonic() + timeout
        verify = ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/health", verify=verify, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM by PID (the gateway anchors and closes), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


RESULTS: dict[str, tuple[int, int, int, str]] = {}
"""Attack name -> (attempts, blocked, logged on the ledger or 0 accepted, what counts)."""


def denied_counts(trail: list[dict[str, object]]) -> dict[str, int]:
    """How many denied access entries a gateway's audit trail holds, by reason."""
    counts: dict[str, int] = {}
    for entry in trail:
        if entry["action"] == "access" and entry["allowed"] is False:
            reason = str(entry["reason"])
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def served(world: World) -> Iterator[GatewayProcess]:
    """A module's ``gateway`` fixture in one line, ``yield from served(world)``: ``world``'s
    gateway started, and stopped by its PID when the fixture is torn down."""
    process = GatewayProcess(world).start()
    try:
        yield process
    finally:
        process.stop()


def cli_against(
    world: World, gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Result]:  # fmt: skip
    """``scanseal ARGS`` in-process in ``world``'s home, talking to ``gateway``."""
    return against_gateway(monkeypatch, capsys, world.home, gateway.url, PASSPHRASE)
