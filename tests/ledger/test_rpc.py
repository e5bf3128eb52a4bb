"""`scanseal ledger rpc`: the embedded chain served read-only over JSON-RPC, read by web3.py.

The server runs as a child process beside a holder of the home's serve lock and a writer of the
chain, as it would beside `scanseal serve`: web3.py reads the contract's events and a record's
anchor through it, `proof verify --rpc` checks a proof through it, it follows what the writer
adds, and every write method is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_account import Account
from web3 import HTTPProvider, Web3

from scanseal._lock import exclusive
from scanseal.ledger import Ledger, LedgerConfig

from .conftest import ROOT, Cast, new_cid
from .test_evidence import Batched, make_batched, scanseal

_ABI = json.loads((ROOT / "src/scanseal/ledger/ImageRegistry.json").read_text("utf-8"))["abi"]


@pytest.fixture
def world(cast: Cast, tmp_path: Path) -> Batched:
    def config(**overrides: object) -> LedgerConfig:
        return LedgerConfig(state_dir=tmp_path / "chain", **overrides)  # type: ignore[arg-type]

    return make_batched(config, cast, tmp_path)


@pytest.fixture
def rpc_url(world: Batched) -> Iterator[str]:
    """`scanseal ledger rpc --port 0` while this process holds the home's serve lock."""
    env = {**os.environ, "SCANSEAL_HOME": str(world.home), "PYTHONPATH": str(ROOT / "src")}
    env.pop("SCANSEAL_CONFIG", None)
    with exclusive(world.home / "serve.lock", "scanseal serve"):
        child = subprocess.Popen(
            [sys.executable, "-m", "scanseal", "ledger", "rpc", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert "http://127.0.0.1:" in line, child.stderr.read() if child.stderr else line
            yield line.strip().rsplit(" ", 1)[-1]
        finally:
            os.kill(child.pid, signal.SIGTERM)
            child.wait(timeout=30)


def _raw(url: str, method: str, params: list[object]) -> dict[str, object]:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    answer = requests.post(url, json=body, timeout=60).json()
    assert isinstance(answer, dict)
    return answer


def test_web3_reads_events_and_anchor(world: Batched, rpc_url: str, cast: Cast) -> None:
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    registry = w3.eth.contract(address=world.contract, abi=_ABI)  # type: ignore[call-overload]
    assert w3.eth.get_code(world.contract) != b""
    anchored = registry.events.BatchAnchored.get_logs(from_block=0)
    assert [log.args.size for log in anchored] == [2]
    assert "0x" + anchored[0].transactionHash.hex().removeprefix("0x") == world.txs["anchor"]
    receipt = w3.eth.get_transaction_receipt(world.txs["anchor"])  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert receipt["to"] == world.contract
    block = w3.eth.get_block(receipt["blockNumber"])
    assert block["hash"] == receipt["blockHash"]
    assert w3.eth.get_block(block["hash"])["number"] == receipt["blockNumber"]
    sent = w3.eth.get_transaction(world.txs["anchor"])  # type: ignore[arg-type]
    assert sent["from"] == cast.admin.address
    root, size, _ = registry.functions.getAnchor(cast.admin.address, 0).call()
    assert size == 2
    assert root == bytes(anchored[0].args.root)
    assert w3.eth.get_balance(cast.admin.address) > 0
    assert w3.net.version == str(w3.eth.chain_id)
    assert "scanseal" in w3.client_version


def test_proof_verify_through_rpc(world: Batched, rpc_url: str) -> None:
    out = world.home / "proof.json"
    exported = scanseal(world.home, "proof", "export", "0x" + world.cids[0].hex(), "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    other = world.home / "elsewhere"  # a verifier with nothing but the file and the node
    other.mkdir()
    args = ["--proof", str(out), "--rpc", rpc_url, "--contract", world.contract]
    done = scanseal(other, "proof", "verify", "0x" + world.cids[0].hex(), *args)
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout
    wrong = scanseal(other, "proof", "verify", "0x" + world.cids[1].hex(), *args)
    assert wrong.returncode == 3, wrong.stderr
    shown = scanseal(other, "ledger", "tx", world.txs["anchor"], "--rpc", rpc_url,
                     "--contract", world.contract)  # fmt: skip
    assert "anchorBatch(" in shown.stdout, shown.stderr


def test_follows_the_writer(world: Batched, rpc_url: str, cast: Cast) -> None:
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    before = w3.eth.block_number
    with Ledger.open(world.config, operator=cast.admin) as ledger:
        cid = new_cid()
        ledger.store_record(cast.uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        anchor = ledger.anchor()
        assert anchor is not None
    assert w3.eth.block_number == before + 1
    registry = w3.eth.contract(address=world.contract, abi=_ABI)  # type: ignore[call-overload]
    assert [log.args.size for log in registry.events.BatchAnchored.get_logs(from_block=0)] == [
        2,
        3,
    ]


def test_writes_are_refused(world: Batched, rpc_url: str, cast: Cast) -> None:
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    head = w3.eth.block_number
    signed = Account.sign_transaction(
        {"to": cast.stranger.address, "value": 1, "gas": 21000, "gasPrice": 10**9,
         "nonce": 0, "chainId": w3.eth.chain_id},
        cast.owner.key,
    )  # fmt: skip
    with pytest.raises(Exception, match="read-only"):
        w3.eth.send_raw_transaction(signed.raw_transaction)
    for method in ("eth_sendRawTransaction", "eth_sendTransaction", "personal_unlockAccount",
                   "anvil_mine", "evm_mine", "anvil_setBalance"):  # fmt: skip
        answer = _raw(rpc_url, method, [])
        error = answer["error"]
        assert isinstance(error, dict)
        assert error["code"] == -32003, answer
    assert _raw(rpc_url, "eth_nonsense", [])["error"] == {
        "code": -32601,
        "message": "method eth_nonsense not found",
    }
    assert w3.eth.block_number == head
    garbage = requests.post(rpc_url, data=b"{not json", timeout=30).json()
    assert garbage["error"]["code"] == -32700


def test_port_in_use_and_no_chain_are_one_line(
    world: Batched, rpc_url: str, tmp_path: Path
) -> None:
    port = rpc_url.rsplit(":", 1)[-1]
    busy = scanseal(world.home, "ledger", "rpc", "--port", port)
    assert busy.returncode == 5, busy.stderr
    assert busy.stderr.startswith("error: cannot listen on 127.0.0.1:")
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = scanseal(empty, "ledger", "rpc", "--port", "0")
    assert nothing.returncode == 6, nothing.stderr
    assert nothing.stderr.count("\n") == 1
    assert not (empty / "chain").exists()  # a read-only view creates nothing
