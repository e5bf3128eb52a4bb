"""Fixtures for the ledger tests: the embedded chain, a real anvil node, and a cast of actors.

anvil comes from the contracts/ npm project (`make install-contracts`). It is started here as a
child process on 127.0.0.1 and a free port, and stopped by its PID.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scanseal.ledger import Ledger, LedgerConfig

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "contracts" / "node_modules"
# anvil's first default account: a well-known development key, funded on every anvil start.
ANVIL_FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def anvil_binary() -> Path | None:
    """The anvil executable shipped by @foundry-rs/anvil for this platform, if installed."""
    candidates = sorted(NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil"))
    return candidates[0] if candidates else None


def missing_engine(what: str) -> None:
    """Skip on a developer machine without the npm project; fail in CI, where make installs it."""
    message = f"{what} is not installed: run `make install-contracts`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A real anvil node for the whole session."""
    binary = anvil_binary()
    if binary is None:
        missing_engine("anvil")
    assert binary is not None
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("anvil did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each contract test runs on the embedded EVM and on a real anvil node."""
    return str(request.param)


ConfigFactory = Callable[..., LedgerConfig]


@pytest.fixture
def make_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> ConfigFactory:
    """LedgerConfig for the current backend; keyword arguments override fields."""

    def build(**overrides: object) -> LedgerConfig:
        values: dict[str, object] = {"state_dir": tmp_path / "chain"}
        if backend == "anvil":
            url = request.getfixturevalue("anvil_url")
            values.update(backend="jsonrpc", url=url, funder_key=ANVIL_FUNDER_KEY)
        values.update(overrides)
        return LedgerConfig(**values)  # type: ignore[arg-type]

    return build


@dataclass
class Cast:
    """Everyone the contract distinguishes."""

    owner: LocalAccount
    admin: LocalAccount
    uploader: LocalAccount
    grantee: LocalAccount
    revoked: LocalAccount
    stranger: LocalAccount


@pytest.fixture
def cast() -> Cast:
    return Cast(*(Account.create() for _ in range(6)))


@dataclass
class World:
    """A deployed registry with roles, one stored record, one grant and one revoked grant."""

    ledger: Ledger
    cast: Cast
    cid: bytes
    hashes: tuple[bytes, bytes, bytes]


def card(account: LocalAccount) -> bytes:
    """A stand-in identity-card hash (the real one is SHA-256 of the signed card)."""
    return bytes.fromhex(account.address[2:]).rjust(32, b"\x01")


def new_cid() -> bytes:
    """A binary CIDv1 (raw, sha2-256) with a random digest."""
    return b"\x01\x55\x12\x20" + os.urandom(32)


def populate(ledger: Ledger, cast: Cast) -> tuple[bytes, tuple[bytes, bytes, bytes]]:
    """Roles, identities, one record granted to `grantee` and revoked from `revoked`."""
    ledger.set_admin(cast.owner, cast.admin.address)
    for actor in (cast.uploader, cast.grantee, cast.revoked):
        ledger.register_identity(cast.admin, actor.address, card(actor))
    ledger.authorize_uploader(cast.admin, cast.uploader.address)
    cid = new_cid()
    hashes = (os.urandom(32), os.urandom(32), os.urandom(32))
    ledger.store_record(cast.uploader, cid, *hashes)
    ledger.grant(cast.uploader, cid, cast.grantee.address)
    ledger.grant(cast.uploader, cid, cast.revoked.address)
    ledger.revoke(cast.uploader, cid, cast.revoked.address)
    return cid, hashes


@pytest.fixture
def world(make_config: ConfigFactory, cast: Cast) -> Iterator[World]:
    ledger = Ledger.open(make_config(), deployer=cast.owner)
    try:
        cid, hashes = populate(ledger, cast)
        yield World(ledger, cast, cid, hashes)
    finally:
        ledger.close()
