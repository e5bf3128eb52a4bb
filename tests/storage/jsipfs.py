"""Start and stop real js-ipfs daemons (kubo RPC API) for tests and benches.

Each daemon gets its own repo directory, ports picked free on 127.0.0.1, no bootstrap peers,
no MDNS, offline mode; it runs as a child process and is stopped by its PID only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "ipfs"
JSIPFS = TOOLS / "node_modules" / ".bin" / "jsipfs"
IMPORTER_SCRIPT = TOOLS / "importer-cid.mjs"


def missing_reason() -> str | None:
    """Why js-ipfs cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (needed for the js-ipfs daemon); install Node 20"
    if not JSIPFS.exists():
        return f"{JSIPFS} is missing; run `make ipfs-tools` to install the pinned npm packages"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Daemon:
    """One running js-ipfs node."""

    repo: Path
    api_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL by PID (a crash, not a clean shutdown) and reap the child."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


def start(base: Path, name: str = "node") -> Daemon:
    """Initialise a repo under ``base`` and start a daemon on free 127.0.0.1 ports."""
    repo = base / name
    env = {**os.environ, "IPFS_PATH": str(repo)}
    subprocess.run(
        [str(JSIPFS), "init", "--profile", "test"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    api = free_port()
    addresses = config["Addresses"]
    addresses["API"] = f"/ip4/127.0.0.1/tcp/{api}"
    addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{free_port()}"
    addresses["RPC"] = f"/ip4/127.0.0.1/tcp/{free_port()}"
    addresses["Swarm"] = [f"/ip4/127.0.0.1/tcp/{free_port()}"]
    addresses["Delegates"] = []
    config["Bootstrap"] = []
    config["Discovery"]["MDNS"]["Enabled"] = False
    config_path.write_text(json.dumps(config, indent=2))
    return _launch(repo, api)


def relaunch(daemon: Daemon) -> Daemon:
    """Start a stopped or killed node again on its repo and ports, as an operator would after a
    crash: the lock a SIGKILLed daemon left behind is removed first (the process is known dead).
    """
    if daemon.process.poll() is None:
        raise RuntimeError(f"js-ipfs {daemon.pid} is still running")
    lock = daemon.repo / "repo.lock"
    if lock.is_dir():
        shutil.rmtree(lock)
    else:
        lock.unlink(missing_ok=True)
    (daemon.repo / "api").unlink(missing_ok=True)
    return _launch(daemon.repo, daemon.api_port)


def _launch(repo: Path, api: int) -> Daemon:
    log_path = repo.parent / f"{repo.name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child's lifetime
    process = subprocess.Popen(
        [str(JSIPFS), "daemon", "--offline", "--enable-preload=false"],
        env={**os.environ, "IPFS_PATH": str(repo)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    daemon = Daemon(repo, api, process)
    _wait_ready(daemon, log_path)
    return daemon


def _wait_ready(daemon: Daemon, log: Path, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise RuntimeError(f"js-ipfs exited early:\n{log.read_text()[-2000:]}")
        try:
            request = urllib.request.Request(f"{daemon.url}/api/v0/version", method="POST")
            with urllib.request.urlopen(request, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    daemon.kill()
    raise RuntimeError(f"js-ipfs did not answer within {limit}s:\n{log.read_text()[-2000:]}")


def block_file(daemon: Daemon, multihash_key: str) -> Path:
    """Where js-ipfs keeps a block: flatfs, next-to-last/2 sharding, ``<KEY>.data``."""
    return daemon.repo / "blocks" / multihash_key[-3:-1] / f"{multihash_key}.data"
