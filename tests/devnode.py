"""A local anvil node for the tests and the benchmarks (tooling, not part of the package).

anvil comes from the contracts/ npm project (``make install-contracts``). It is started as a
child process on 127.0.0.1 and a free port, and stopped by its own PID, never by name.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from eth_account.signers.local import LocalAccount
from web3 import Web3

from scanseal.errors import LedgerUnavailable

#: anvil's first default account: a well-known development key, funded on every anvil start.
ANVIL_FUNDER_KEY: Final = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
_CHECKOUT: Final = Path(__file__).resolve().parents[1]
NODE_MODULES: Final = _CHECKOUT / "contracts" / "node_modules"


def anvil_binary() -> Path | None:
    """The anvil executable: ``$SCANSEAL_ANVIL``, else the one the npm project installed: the
    platform package (``@foundry-rs/anvil-linux-amd64`` here) pulled in by ``@foundry-rs/anvil``.
    """
    if override := os.environ.get("SCANSEAL_ANVIL"):
        return Path(override)
    candidates = sorted(NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil"))
    return candidates[0] if candidates else None


@contextmanager
def running_anvil(binary: Path | None = None, *, start_timeout: float = 15.0) -> Iterator[str]:
    """Run anvil for the duration of the block; yields its JSON-RPC URL."""
    binary = binary or anvil_binary()
    if binary is None:
        raise LedgerUnavailable("anvil is not installed: run `make install-contracts`")
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, start_timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise LedgerUnavailable(f"anvil did not answer on {url} within {timeout:.0f} s")


def spend_nonces(url: str, account: LocalAccount, count: int = 1) -> None:
    """Send ``count`` transactions from ``account`` to the node at ``url`` behind ScanSeal's
    back, as an administrator would with the same key in another tool (web3, cast, a wallet):
    what ScanSeal keeps as the account's next nonce is then stale."""
    w3 = Web3(Web3.HTTPProvider(url))
    for _ in range(count):
        tx: dict[str, Any] = {
            "to": account.address, "value": 0, "gas": 21000, "chainId": w3.eth.chain_id,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
            "maxPriorityFeePerGas": 1,
        }  # fmt: skip
        sent = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        if w3.eth.wait_for_transaction_receipt(sent, timeout=30)["status"] != 1:
            raise LedgerUnavailable(f"the outside transaction from {account.address} failed")
