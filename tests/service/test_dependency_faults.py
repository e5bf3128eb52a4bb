"""Dependency faults against a real ``scanseal serve`` child process.

Two gateways: one over two real js-ipfs nodes (kubo RPC API) and a real anvil, one on the
embedded defaults (py-evm, embedded block store). Each fault is made for real — a node
SIGSTOPped or SIGKILLed in the middle of an upload, anvil stopped and started again, the home
directory full or read-only (a small tmpfs, as root), a SQLite state file or a stored block
overwritten — and then, for every request made meanwhile:

- the answer is one JSON error (``{"error", "reason"}``, one line) with a stable status, never a
  500, and comes within ``HANG`` seconds;
- the gateway process stays up, and ``/v1/health`` names the dependency that fails;
- once the dependency is back the gateway serves again, and every upload it acknowledged, before
  or during the fault, is still fetchable, opens and verifies (nothing acknowledged is lost).

The engines are started once per module and reused across cases (js-ipfs takes seconds).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from devnode import ANVIL_FUNDER_KEY
from fault_support import HANG, Anvil, Prober, Served, restartable_anvil
from gateway_harness import GatewayProcess, free_port, make_world
from scanseal.storage import CID, EmbeddedStore, KuboNode
from storage import jsipfs

pytestmark = pytest.mark.integration
NODE_TIMEOUT = 3.0
"""The kubo nodes' silence timeout in the gateway's [storage] table (default 30 s)."""
LEDGER_TIMEOUT = 3.0


def _health(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.url}/v1/health", timeout=HANG).status_code == 200


def _failing(gateway: GatewayProcess, dependency: str) -> None:
    """/v1/health answers 503 "failing", naming ``dependency``, still with the domain."""
    answer = httpx.get(f"{gateway.url}/v1/health", timeout=HANG)
    assert answer.status_code == 503
    health = answer.json()
    assert health["status"] == "failing"
    assert dependency in health["failing"]
    assert {"gateway", "chain_id", "contract"} <= set(health)


# --------------------------------------------------------------------- engines


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    yield from restartable_anvil(tmp_path_factory)


@pytest.fixture(scope="module")
def ipfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[jsipfs.Daemon]]:
    reason = jsipfs.missing_reason()
    if reason is not None:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("ipfs")
    with ThreadPoolExecutor(2) as pool:
        daemons = list(pool.map(lambda name: jsipfs.start(base, name), ["node0", "node1"]))
    yield daemons
    for daemon in daemons:
        if daemon.process.poll() is None:
            os.kill(daemon.pid, signal.SIGCONT)
        daemon.stop()


@pytest.fixture(scope="module")
def networked(
    anvil: Anvil, ipfs: list[jsipfs.Daemon], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prober]:
    """A gateway on both js-ipfs nodes (both must pin every object) and anvil."""
    root = tmp_path_factory.mktemp("networked")
    nodes = ", ".join(f'"{d.url}"' for d in ipfs)
    world = make_world(
        root, ["ito", "lee"],
        extra=f"[storage]\nbackend = \"kubo\"\nnodes = [{nodes}]\nmin_replicas = 2\n"
        f"timeout = {NODE_TIMEOUT}\n",  # retries and backoff: the defaults
        ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil.url}"\ntimeout = {LEDGER_TIMEOUT}',
    )  # fmt: skip
    gateway = Served(world, {"SCANSEAL_LEDGER_FUNDER_KEY": ANVIL_FUNDER_KEY}).start()
    prober = Prober(gateway, root / "scratch")
    prober.ok(prober.upload(prober.seal()))
    yield prober
    prober.close()
    gateway.stop()


def _pinned_everywhere(prober: Prober, daemons: list[jsipfs.Daemon]) -> None:
    for daemon in daemons:
        node = KuboNode(daemon.url, timeout=HANG)
        for record, envelope_cid in prober.acked.items():
            assert node.is_pinned(envelope_cid), (daemon.url, envelope_cid)
            assert node.is_pinned(record), (daemon.url, record)


# --------------------------------------------------------------------- IPFS and anvil


def test_ipfs_node_sigstopped_mid_upload(networked: Prober, ipfs: list[jsipfs.Daemon]) -> None:
    """A node that stops answering (SIGSTOP: it still accepts connections) cannot hold an
    upload beyond the node timeout: 503 StorageUnavailable, and fetches still serve."""
    stalled = ipfs[1]
    os.kill(stalled.pid, signal.SIGSTOP)
    try:
        sealed = networked.seal()
        networked.refused(networked.upload(sealed), 503, "StorageUnavailable")
        networked.opens(next(iter(networked.acked)))  # the local copy still serves
    finally:
        os.kill(stalled.pid, signal.SIGCONT)
    networked.ok(networked.upload(sealed))  # the client's retry, signed afresh
    _pinned_everywhere(networked, ipfs)
    networked.nothing_lost()


def test_ipfs_node_killed_mid_upload(networked: Prober, ipfs: list[jsipfs.Daemon]) -> None:
    """SIGKILL a node while an upload is streaming to it (held there by a SIGSTOP first, so the
    kill lands mid-call): 503, then the node restarts on its repo and the retry succeeds."""
    victim = ipfs[0]
    sealed = networked.seal()
    os.kill(victim.pid, signal.SIGSTOP)
    answers: list[httpx.Response] = []
    upload = threading.Thread(target=lambda: answers.append(networked.upload(sealed)))
    upload.start()
    time.sleep(NODE_TIMEOUT / 3)
    victim.kill()
    upload.join(HANG)
    assert answers, "the upload did not return"
    networked.refused(answers[0], 503, "StorageUnavailable")
    networked.refused(networked.upload(networked.seal()), 503, "StorageUnavailable")  # node down
    _failing(networked.gateway, "store")  # one node of two up, min_replicas = 2
    ipfs[0] = jsipfs.relaunch(victim)
    _health(networked.gateway)
    networked.ok(networked.upload(sealed))
    _pinned_everywhere(networked, ipfs)
    networked.nothing_lost()


def test_anvil_down_and_restarted(networked: Prober, anvil: Anvil) -> None:
    """While anvil is down, uploads and fetches (each a transaction in per-record mode) are
    refused with 503 LedgerUnavailable; when it is back on the same chain, the gateway serves
    again: every acknowledged record is there once, the one refused meanwhile goes through."""
    sealed = networked.seal()
    anvil.stop()
    try:
        networked.refused(networked.upload(sealed), 503, "LedgerUnavailable")
        networked.refused(networked.fetch(next(iter(networked.acked))), 503, "LedgerUnavailable")
        _failing(networked.gateway, "chain")  # the gateway itself is up, its chain is not
    finally:
        anvil.start()
    _health(networked.gateway)
    first = networked.upload(sealed)
    networked.ok(first)
    again = networked.upload(sealed)  # the same record twice answers its first receipt
    networked.ok(again)
    assert again.json()["ledger"] == first.json()["ledger"], "registered twice"
    networked.nothing_lost()


def test_anvil_sigstopped(networked: Prober, anvil: Anvil) -> None:
    """An anvil that accepts connections but never answers holds a fetch no longer than the
    ledger timeout: 503 LedgerUnavailable; after SIGCONT the gateway serves again."""
    assert anvil.process is not None
    record = next(iter(networked.acked))
    os.kill(anvil.process.pid, signal.SIGSTOP)
    try:
        networked.refused(networked.fetch(record), 503, "LedgerUnavailable")
    finally:
        os.kill(anvil.process.pid, signal.SIGCONT)
    networked.nothing_lost()


# --------------------------------------------------------------------- the embedded defaults


class Home:
    """The embedded gateway's home: a 64 MiB tmpfs when root (so it can be filled and made
    read-only), a plain directory otherwise."""

    SIZE = 64 * 1024 * 1024

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounted = False
        root.mkdir(parents=True)
        if os.geteuid() == 0 and shutil.which("mount"):
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.SIZE},mode=0700", "tmpfs", str(root)],
                check=True,
            )
            self.mounted = True

    def need_mount(self) -> None:
        if not self.mounted:
            pytest.skip("needs root to mount a small tmpfs home (disk full, read-only)")

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        """The home read-only for everything the gateway opens from now on: a read-only bind
        mount over it (a remount would be refused while the gateway holds files open)."""
        target = str(self.root)
        subprocess.run(["mount", "--bind", target, target], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
            yield
        finally:
            subprocess.run(["umount", "-l", target], check=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    place = Home(tmp_path_factory.mktemp("embedded") / "mnt")
    yield place
    place.unmount()


@pytest.fixture(scope="module")
def embedded(home: Home) -> Iterator[Prober]:
    """A gateway on the embedded defaults (py-evm in the process, embedded block store), in
    batched mode: the chain stays short, so the restarts below replay its journal quickly (the
    per-record path is the networked gateway's)."""
    world = make_world(home.root, ["ito", "lee"], mode="batched")
    gateway = Served(world).start()
    prober = Prober(gateway, home.root.parent / "scratch")
    prober.ok(prober.upload(prober.seal()))
    yield prober
    prober.close()
    gateway.stop()


def _restart(prober: Prober) -> None:
    """Stop the gateway (SIGTERM) and start it again on the same home."""
    prober.gateway.stop()
    prober.gateway.start()


def test_disk_full(embedded: Prober, home: Home) -> None:
    """A full disk refuses uploads with 503 and leaves nothing half-written; fetches answer 200
    or 503; with space back everything serves, also after a restart (the chain's journal and
    the gateway's state agree with what was acknowledged)."""
    home.need_mount()
    filler = embedded.gateway.world.home / "filler"
    sealed = embedded.seal()
    _fill(filler)
    try:
        embedded.refused(embedded.upload(sealed), 503, "StorageUnavailable")
        for _ in range(3):
            answer = embedded.fetch(next(iter(embedded.acked)))
            if answer.status_code != 200:  # the nonce's commit or the chain's journal
                embedded.refused(answer, 503, "StorageUnavailable", "LedgerUnavailable")
    finally:
        filler.unlink()
    embedded.ok(embedded.upload(sealed))
    embedded.nothing_lost()
    _restart(embedded)
    embedded.nothing_lost()


def _fill(filler: Path) -> None:
    """Write ``filler`` until the file system is full."""
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError, match="No space left"):
        _write_forever(handle)


def _write_forever(handle: io.RawIOBase) -> None:
    while True:
        handle.write(b"\0" * (1 << 20))


def test_read_only_home(embedded: Prober, home: Home) -> None:
    """The home turned read-only under the running gateway: an upload (new files in the block
    store) answers 503, a fetch answers 200 or 503; writable again, the gateway serves again."""
    home.need_mount()
    sealed = embedded.seal()
    with home.read_only():
        embedded.refused(embedded.upload(sealed), 503, "StorageUnavailable")
        answer = embedded.fetch(next(iter(embedded.acked)))
        if answer.status_code != 200:
            embedded.refused(answer, 503, "StorageUnavailable", "LedgerUnavailable")
    embedded.ok(embedded.upload(sealed))
    embedded.nothing_lost()


def _envelope_leaf(prober: Prober, envelope_cid: str) -> tuple[Path, int]:
    """Pack file and offset of the envelope's first content block (read from the gateway's own
    index, which SQLite lets another process read)."""
    store = EmbeddedStore(prober.gateway.world.home / "blocks")
    try:
        root = CID.parse(envelope_cid)
        where = store.block_location(root)
        assert where is not None
        return where[0], where[1] + where[2] // 2
    finally:
        store.close()


def test_corrupted_block_is_never_served(embedded: Prober) -> None:
    """A flipped byte in a stored envelope: verified reads refuse it (422 IntegrityError) for
    fetch and verify; restored, the record serves again."""
    sealed = embedded.seal()
    embedded.ok(embedded.upload(sealed))
    record = sealed[0]
    pack, offset = _envelope_leaf(embedded, embedded.acked[record])
    with pack.open("r+b") as handle:
        handle.seek(offset)
        original = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([original[0] ^ 0x01]))
    try:
        embedded.refused(embedded.fetch(record), 422, "IntegrityError")
        embedded.refused(embedded.verify(record), 422, "IntegrityError")
    finally:
        with pack.open("r+b") as handle:
            handle.seek(offset)
            handle.write(original)
    embedded.nothing_lost()


def test_corrupted_state_file(embedded: Prober) -> None:
    """The gateway's SQLite state overwritten while it is stopped: `scanseal serve` refuses to
    start with one line (no traceback) and a stable exit code; restored, it serves again."""
    state = embedded.gateway.world.home / "gateway" / "gateway.sqlite3"
    embedded.gateway.stop()
    files = [state.with_name(state.name + suffix) for suffix in ("", "-wal", "-shm")]
    saved = {path: path.read_bytes() for path in files if path.exists()}
    for path in files[1:]:  # the write-ahead log holds recent pages: it goes with the file
        path.unlink(missing_ok=True)
    state.write_bytes(b"this is not a database " * 512)
    try:
        env = {**embedded.gateway.world.env(), "SCANSEAL_GATEWAY_PORT": str(free_port())}
        try:
            serve = subprocess.run(
                _serve_command(embedded.gateway), env=env, capture_output=True, timeout=30,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("`scanseal serve` started on a corrupted state file")
        output = (serve.stdout + serve.stderr).decode(errors="replace")
        assert serve.returncode in (3, 5), output
        assert "Traceback" not in output
        assert len(output.strip().splitlines()) == 1, output
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
        embedded.gateway.start()
    embedded.nothing_lost()


def _serve_command(gateway: GatewayProcess) -> list[str]:
    import sys

    return [sys.executable, "-m", "scanseal", "serve", "--config", str(gateway.world.config)]
