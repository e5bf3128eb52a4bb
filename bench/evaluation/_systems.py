"""The pieces Tables 2 and 5 run: a CT study, a plain HTTPS server, gateways, a js-ipfs node.

Every server is a child process on 127.0.0.1 and is stopped by its PID (``Servers.close``),
also when a measurement fails.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from evaluation._common import ROOT

PASSPHRASE = "evaluation passphrase"
PLAIN_SERVER = Path(__file__).with_name("_plain_server.py")


def ct_study(folder: Path, count: int, seed: int = 8) -> list[Path]:
    """``count`` 512×512 16-bit CT slices of one series (CT_small's header, a synthetic body)."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    study, series = generate_uid(), generate_uid()
    yy, xx = np.mgrid[-256:256, -256:256]
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        ds = template.copy()
        body = ((xx**2 + (yy * 1.3) ** 2) < 200**2) * 1000
        body += ((xx - index + 50) ** 2 + yy**2 < 40**2) * 400
        ds.Rows, ds.Columns = 512, 512
        ds.PixelData = (body + rng.integers(0, 40, size=(512, 512))).astype(np.uint16).tobytes()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = index + 1
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"ct{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID (a gateway anchors and closes), SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str = "server",
    seconds: float = 60, log: Path | None = None,
) -> None:  # fmt: skip
    """Poll ``ready`` (an HTTP error counts as not yet) until it holds; RuntimeError naming
    ``what`` (and the tail of ``log``) if ``process`` exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text("utf-8", "replace")[-300:] if log else ""
            raise RuntimeError(f"{what} exited with {process.returncode}: {tail}")
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {seconds:g} s")


@dataclass
class Gateway:
    """A running ``scanseal serve`` and the identities of its department."""

    process: subprocess.Popen[bytes]
    url: str
    people: dict[str, Any]
    ca: Path
    home: Path


@dataclass
class Servers(AbstractContextManager["Servers"]):
    """Child processes started by this evaluation; closed (by PID) on exit."""

    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    daemons: list[Any] = field(default_factory=list)
    _certs: Any = None

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for process in self.processes:
            stop(process)
        for daemon in self.daemons:
            daemon.stop()
        self.processes.clear()
        self.daemons.clear()

    @property
    def certs(self) -> Any:
        """One private CA and a certificate for 127.0.0.1, shared by every server."""
        if self._certs is None:
            from scanseal.service.tls import make_certs

            self._certs = make_certs(self.root / "certs")
        return self._certs

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca))

    def plain_https(self) -> str:
        """The baseline: an HTTPS server that stores PUT bodies and returns them on GET."""
        port = free_port()
        command = [sys.executable, str(PLAIN_SERVER), str(port), str(self.certs.cert),
                   str(self.certs.key)]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        url = f"https://127.0.0.1:{port}"
        self._wait(url + "/health", process)
        return url

    def jsipfs(self, name: str = "ipfs") -> str:
        """A real js-ipfs node (kubo RPC API) on 127.0.0.1; its API URL."""
        sys.path.insert(0, str(ROOT / "tests"))
        jsipfs = importlib.import_module("storage.jsipfs")  # tests/storage, first on sys.path

        if (reason := jsipfs.missing_reason()) is not None:
            raise RuntimeError(reason)
        daemon = jsipfs.start(self.root, name)
        self.daemons.append(daemon)
        return str(daemon.url)

    def anvil(self) -> tuple[str, subprocess.Popen[bytes]]:
        """A real anvil node (JSON-RPC) on 127.0.0.1: its URL and its process."""
        from devnode import anvil_binary

        binary = anvil_binary()
        if binary is None:
            raise RuntimeError("anvil is not installed: run `make install-contracts`")
        port = free_port()
        process = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        query = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
        wait_until(lambda: httpx.post(url, json=query) is not None, process, "anvil", 30)
        return url, process

    def gateway(
        self, name: str, mode: str, *, ipfs: str | None, readers: int = 1, chain: str | None = None
    ) -> Gateway:
        """``scanseal serve`` over TLS; storage on the ``ipfs`` node and the ledger on the
        ``chain`` node (JSON-RPC) when given, else the embedded store and chain."""
        from scanseal.crypto.identity import Keystore

        home = self.root / name
        keystore = Keystore(home / "keys", scrypt_n=2**10)
        people = {n: keystore.create(n, PASSPHRASE) for n in ["gateway", "sender"]}
        people.update({f"reader{i}": keystore.create(f"reader{i}", PASSPHRASE)
                       for i in range(readers)})  # fmt: skip
        members = home / "members"
        members.mkdir()
        for person_name, person in people.items():
            if person_name != "gateway":
                (members / f"{person_name}.json").write_text(person.card.to_json(), "utf-8")
        port = free_port()
        storage = (
            f'[storage]\nbackend = "kubo"\nnodes = ["{ipfs}"]\nmin_replicas = 1\n' if ipfs else ""
        )
        config = home / "scanseal.toml"
        config.write_text(
            f'[gateway]\nidentity = "gateway"\nport = {port}\nmembers = "{members}"\n'
            f'tls_cert = "{self.certs.cert}"\ntls_key = "{self.certs.key}"\n'
            f'[ledger]\nmode = "{mode}"\nbatch_size = 1000\nbatch_seconds = 1\n'
            + (f'backend = "jsonrpc"\nurl = "{chain}"\n' if chain else "")
            + storage,
            "utf-8",
        )
        env = dict(os.environ, SCANSEAL_HOME=str(home), SCANSEAL_PASSPHRASE=PASSPHRASE)
        if chain:
            from devnode import ANVIL_FUNDER_KEY

            env["SCANSEAL_LEDGER_FUNDER_KEY"] = ANVIL_FUNDER_KEY
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        log = (home / "gateway.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "scanseal", "serve", "--config", str(config)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(process)
        url = f"https://127.0.0.1:{port}"
        self._wait(url + "/v1/health", process, home / "gateway.log")
        return Gateway(process, url, people, self.certs.ca, home)

    def _wait(self, url: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
        context = self.ssl_context()
        ready = lambda: httpx.get(url, verify=context, timeout=2).status_code == 200  # noqa: E731
        wait_until(ready, process, f"server for {url}", 90, log)
