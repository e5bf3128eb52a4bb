"""Logs, health and metrics of a real ``scanseal serve`` child process (docs/OPERATIONS.md).

- ``--log-format json``: every line ``serve`` writes to stderr is one JSON object with ``ts``
  (ISO 8601, UTC, ``Z``), ``level``, ``logger``, ``msg`` and ``fields``; an access line per
  request names method, route template, status, duration, source and (once the signed headers
  authenticated) the requester; a line per anchor; uvicorn's "Invalid HTTP request received"
  names its source. The text format carries the same fields as ``key=value``.
- ``/v1/health`` reports each dependency and answers 503 ``failing`` when one fails: the block
  store made unwritable (its directory taken away: the tests run as root, for whom a
  ``chmod`` changes nothing), the JSON-RPC chain (anvil) stopped. A client still reads the
  signing domain from a failing gateway.
- ``/metrics`` has the ledger's and the store's series.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.data import get_testdata_file

from devnode import ANVIL_FUNDER_KEY, anvil_binary, running_anvil
from gateway_harness import GatewayProcess, World, make_world
from scanseal.client import GatewayClient
from scanseal.errors import AccessDenied, ScanSealError
from scanseal.protocol import REQUEST_HEADER, SIGNATURE_HEADER

CT = Path(str(get_testdata_file("CT_small.dcm")))
_STDOUT = ("scanseal gateway ", "DICOM Storage SCP ")
"""What ``serve`` prints on stdout (the harness logs stdout and stderr to one file)."""
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _json_lines(log: Path) -> list[dict[str, Any]]:
    """Every stderr line of the log, each parsed as one JSON object."""
    lines = [line for line in log.read_text().splitlines() if not line.startswith(_STDOUT)]
    parsed = [json.loads(line) for line in lines]
    for line in parsed:
        assert set(line) >= {"ts", "level", "logger", "msg", "fields"}, line
        assert _TS.fullmatch(line["ts"]), line
        assert line["level"] in ("debug", "info", "warning", "error", "critical")
        assert isinstance(line["fields"], dict)
    return parsed


def _access(lines: list[dict[str, Any]], method: str, route: str) -> list[dict[str, Any]]:
    return [
        line["fields"]
        for line in lines
        if line["logger"] == "scanseal.access"
        and line["fields"]["method"] == method
        and line["fields"]["route"] == route
    ]


def _eventually(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture(scope="module")
def json_gateway(tmp_path_factory: pytest.TempPathFactory):
    world = make_world(tmp_path_factory.mktemp("observe"), ["ito", "lee"], ["mallory"],
                       mode="batched")  # fmt: skip
    process = GatewayProcess(world, args=["--log-format", "json"]).start()
    yield process
    process.stop()


def test_json_lines_access_log_requester_and_anchor(json_gateway: GatewayProcess, tmp_path: Path):
    people = json_gateway.world.people
    with GatewayClient(json_gateway.url, people["ito"]) as ito:
        record = str(ito.send(CT, [people["lee"].card], tmp_path)["manifest_cid"])
    with GatewayClient(json_gateway.url, people["lee"]) as lee:
        lee.fetch(record, tmp_path / "lee.dcm")
    with GatewayClient(json_gateway.url, people["mallory"]) as mallory, pytest.raises(AccessDenied):
        mallory.fetch(record, tmp_path / "mallory.dcm")
    forged = {REQUEST_HEADER: "e30", SIGNATURE_HEADER: "0x" + "00" * 65}
    assert httpx.get(f"{json_gateway.url}/v1/records/{record}", headers=forged).status_code >= 400
    with socket.create_connection(("127.0.0.1", json_gateway.port)) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 400")
        host, port = raw.getsockname()
        source = f"{host}:{port}"

    def anchored() -> list[dict[str, Any]]:
        lines = _json_lines(json_gateway.log)
        return [line for line in lines if line["logger"] == "scanseal.ledger"]

    anchors = _eventually(anchored)  # batch_seconds = 1: the tick anchors within seconds
    assert anchors
    assert anchors[0]["msg"].startswith("anchored ")
    assert anchors[0]["fields"]["entries"] >= 2  # the record and lee's access at least
    assert re.fullmatch(r"0x[0-9a-f]{64}", anchors[0]["fields"]["root"])
    assert str(anchors[0]["fields"]["tx_hash"]).startswith("0x")

    lines = _json_lines(json_gateway.log)
    (upload,) = _access(lines, "POST", "/v1/records")
    assert upload["status"] == 200
    assert upload["requester"] == people["ito"].address
    assert upload["duration_ms"] > 0
    assert upload["source"].startswith("127.0.0.1:")
    fetches = _access(lines, "GET", "/v1/records/{record}")
    by_status = {(f["status"], f["requester"]) for f in fetches}
    assert (200, people["lee"].address) in by_status
    assert (403, people["mallory"].address) in by_status  # authenticated, refused by the ledger
    assert any(f["requester"] is None and f["status"] >= 400 for f in fetches)  # never signed
    assert record not in json.dumps(fetches)  # the route template, not the record
    assert _access(lines, "GET", "/v1/health")  # the harness's polls
    invalid = [line for line in lines if line["msg"].startswith("Invalid HTTP request")]
    assert invalid
    assert invalid[0]["fields"]["source"] == source
    assert invalid[0]["logger"] == "uvicorn.error"
    assert invalid[0]["level"] == "warning"


def test_text_format_is_timestamped_with_fields(tmp_path: Path):
    world = make_world(tmp_path, ["ito"], extra='log_level = "info"')
    gateway = GatewayProcess(world).start()  # text: the default
    try:
        httpx.get(f"{gateway.url}/v1/health")
    finally:
        gateway.stop()
    lines = [line for line in gateway.log.read_text().splitlines() if "/v1/health" in line]
    pattern = (
        r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO scanseal\.access: GET /v1/health (200|503) [\d.]+ ms "
        r"method=GET route=/v1/health status=(200|503) duration_ms=[\d.]+ requester=- "
        r"source=127\.0\.0\.1:\d+"
    )
    assert any(re.fullmatch(pattern, line) for line in lines), lines[:3]


def test_bad_log_format_is_one_line_exit_2(tmp_path: Path):
    import subprocess
    import sys

    world = make_world(tmp_path, ["ito"])
    done = subprocess.run(
        [sys.executable, "-m", "scanseal", "serve", "--config", str(world.config),
         "--log-format", "xml"],
        env=world.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "log_format must be one of text, json" in done.stderr
    assert "Traceback" not in done.stderr


def test_health_reports_each_dependency_and_503_when_the_store_fails(json_gateway: GatewayProcess):
    answer = httpx.get(f"{json_gateway.url}/v1/health")
    assert answer.status_code == 200
    health = answer.json()
    assert health["status"] == "ok"
    assert health["failing"] == []
    checks = {k: v for k, v in health.items() if isinstance(v, dict)}
    assert set(checks) == {"chain", "store", "state", "batch"}
    assert checks["chain"]["ok"]
    assert checks["chain"]["head"] >= 1
    assert checks["store"]["ok"]
    assert checks["store"]["free_bytes"] > 0
    assert checks["batch"]["ok"]
    assert checks["batch"]["pending"] >= 0
    for key in ("gateway", "chain_id", "contract", "ledger_mode", "max_lifetime", "version"):
        assert key in health  # what clients read stays

    blocks = json_gateway.world.home / "blocks"
    away = blocks.with_name("blocks.away")
    blocks.rename(away)
    blocks.write_text("not a directory")  # the store's directory is gone: nothing can be written
    try:
        answer = httpx.get(f"{json_gateway.url}/v1/health")
        assert answer.status_code == 503
        health = answer.json()
        assert health["status"] == "failing"
        assert health["failing"] == ["store"]
        assert health["store"]["ok"] is False
        assert str(blocks) in health["store"]["reason"]
        with GatewayClient(json_gateway.url) as anyone:  # the domain is still served
            assert anyone.health()["gateway"] == health["gateway"]
        metrics = httpx.get(f"{json_gateway.url}/metrics").text
        assert "scanseal_store_writable 0.0" in metrics
    finally:
        blocks.unlink()
        away.rename(blocks)
    assert httpx.get(f"{json_gateway.url}/v1/health").status_code == 200


def test_metrics_have_ledger_and_store_series(json_gateway: GatewayProcess, tmp_path: Path):
    people = json_gateway.world.people
    with GatewayClient(json_gateway.url, people["ito"]) as ito:
        ito.send(CT, [people["lee"].card], tmp_path)
    text = httpx.get(f"{json_gateway.url}/metrics").text
    values = _samples(text)
    assert values["scanseal_store_bytes"] >= CT.stat().st_size  # the envelope at least
    assert values["scanseal_store_free_bytes"] > 0
    assert values["scanseal_ledger_pending_entries"] >= 1  # just uploaded, anchored in a second
    assert values["scanseal_ledger_anchor_lag_seconds"] >= 0
    assert values["scanseal_ledger_transaction_failures_total"] == 0
    assert "scanseal_ledger_anchors_total" in values
    _eventually(lambda: _samples(httpx.get(f"{json_gateway.url}/metrics").text)
                ["scanseal_ledger_pending_entries"] == 0)  # fmt: skip
    after = _samples(httpx.get(f"{json_gateway.url}/metrics").text)
    assert after["scanseal_ledger_pending_entries"] == 0
    assert after["scanseal_ledger_anchors_total"] >= 1
    assert after["scanseal_ledger_since_anchor_seconds"] >= 0


def _samples(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text answer, by name."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+) (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


@pytest.mark.integration
def test_health_503_while_the_json_rpc_chain_is_stopped(tmp_path: Path, monkeypatch):
    binary = anvil_binary()
    if binary is None:
        pytest.skip("anvil is not installed: run `make install-contracts`")
    monkeypatch.setenv("SCANSEAL_LEDGER_FUNDER_KEY", ANVIL_FUNDER_KEY)
    with running_anvil(binary) as url:
        world: World = make_world(
            tmp_path, ["ito"], ledger_extra=f'backend = "jsonrpc"\nurl = "{url}"\ntimeout = 3'
        )
        gateway = GatewayProcess(world, args=["--log-format", "json"]).start()
        try:
            health = httpx.get(f"{gateway.url}/v1/health").json()
            assert health["chain"]["ok"]
            assert health["chain_id"] == 31337
            assert "batch" not in health  # per-record mode: nothing waits
            _a_transaction_fails(gateway, url, tmp_path)
        except BaseException:
            gateway.stop()
            raise
    try:  # anvil is stopped
        answer = httpx.get(f"{gateway.url}/v1/health", timeout=15)
        assert answer.status_code == 503
        health = answer.json()
        assert health["status"] == "failing"
        assert "chain" in health["failing"]
        assert f"Ethereum node {url}" in health["chain"]["reason"]
        assert health["store"]["ok"]
    finally:
        gateway.stop()


def _a_transaction_fails(gateway: GatewayProcess, url: str, tmp_path: Path) -> None:
    """The gateway's account drained on anvil: the next upload's storeImage cannot be sent,
    and /metrics counts the failed transaction."""
    before = _samples(httpx.get(f"{gateway.url}/metrics").text)
    assert before["scanseal_ledger_transaction_failures_total"] == 0
    drain = {"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance",
             "params": [gateway.world.people["gateway"].address, "0x0"]}  # fmt: skip
    assert "error" not in httpx.post(url, json=drain).json()
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito, pytest.raises(ScanSealError):
        ito.send(CT, [people["ito"].card], tmp_path)
    after = _samples(httpx.get(f"{gateway.url}/metrics").text)
    assert after["scanseal_ledger_transaction_failures_total"] >= 1


def test_a_batch_is_overdue_only_far_past_batch_seconds():
    """The batch check fails once the oldest pending entry waits 2 × batch_seconds + 60 s."""
    from scanseal.ledger import LedgerStatus
    from scanseal.service.health import overdue

    def waited(seconds: float | None, batch_seconds: float | None = 5.0) -> bool:
        return overdue(LedgerStatus("batched", 3, seconds, 1.0, 2, 0, batch_seconds))

    assert not waited(None)
    assert not waited(70.0)
    assert waited(70.1)
    assert not waited(10_000.0, None)  # per-record: nothing ever waits
