"""The evidence of a real batched `scanseal serve`, read beside it while it runs.

A gateway child process takes a study; its records are anchored. Meanwhile, on the same home,
`scanseal ledger rpc` serves the embedded chain read-only (the gateway holds the home's serve
lock and the chain's journal), web3.py reads the anchor through it, `scanseal proof export`
takes a record's proof from the gateway's log, and a verifier with nothing but the proof file
and the RPC URL checks it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from web3 import HTTPProvider, Web3

from gateway_harness import GatewayProcess, World, make_world

from .conftest import ROOT

STUDY = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small.dcm")]
_ABI = json.loads((ROOT / "src/scanseal/ledger/ImageRegistry.json").read_text("utf-8"))["abi"]
pytestmark = pytest.mark.slow


def _scanseal(
    world: World, *args: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = world.env()
    if home is not None:
        env["SCANSEAL_HOME"] = str(home)
    command = [sys.executable, "-m", "scanseal", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def _export_when_anchored(world: World, record: str, out: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        done = _scanseal(world, "proof", "export", record, "-o", str(out))
        if done.returncode == 0:
            return
        assert "not anchored yet" in done.stderr, done.stderr
        assert time.monotonic() < deadline, "the gateway never anchored"
        time.sleep(0.5)


def test_evidence_of_a_running_gateway(tmp_path: Path) -> None:
    world = make_world(tmp_path, ["ito", "lee"], mode="batched")
    operator = world.people["gateway"].address
    text = world.config.read_text("utf-8")
    text = text.replace("[ledger]\n", f'[ledger]\noperator = "{operator}"\n')
    world.config.write_text(text, "utf-8")
    gateway = GatewayProcess(world).start()
    rpc: subprocess.Popen[str] | None = None
    try:
        sent = _scanseal(world, "send", *map(str, STUDY), "--to", str(world.cards["lee"]),
                         "--as", "ito", "--gateway", gateway.url,
                         "--workdir", str(tmp_path / "sent"))  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        records = re.findall(r"record (b[a-z2-7]+)", sent.stdout)
        proof = tmp_path / "proof.json"
        _export_when_anchored(world, records[0], proof)
        rpc = subprocess.Popen(
            [sys.executable, "-m", "scanseal", "ledger", "rpc", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=world.env(),
        )  # fmt: skip
        assert rpc.stdout is not None
        url = rpc.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:"), rpc.stderr.read() if rpc.stderr else url
        exported = json.loads(proof.read_text("utf-8"))
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 60}))
        address = exported["contract"]
        registry = w3.eth.contract(address=address, abi=_ABI)  # type: ignore[call-overload]
        anchors = registry.events.BatchAnchored.get_logs(from_block=0)
        assert any(log.args.operator == operator for log in anchors)
        receipt = w3.eth.get_transaction_receipt(exported["anchor"]["tx_hash"])
        assert receipt["status"] == 1
        stranger = tmp_path / "auditor"
        stranger.mkdir()
        checked = _scanseal(world, "proof", "verify", records[0], "--proof", str(proof),
                            "--rpc", url, "--contract", address, home=stranger)  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        assert "verified" in checked.stdout
        shown = _scanseal(world, "ledger", "tx", exported["anchor"]["tx_hash"], "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["call"]["function"] == "anchorBatch"
    finally:
        if rpc is not None:
            os.kill(rpc.pid, signal.SIGTERM)
            rpc.wait(timeout=30)
        gateway.stop()
