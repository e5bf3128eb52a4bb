"""The CLI against a gateway served over TLS with a certificate from `scanseal certs`."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from cli_support import Result, one_error_line, run_cli
from gateway_harness import PASSPHRASE, GatewayProcess, World, make_world
from scanseal.client import GatewayClient
from scanseal.errors import GatewayUnavailable
from scanseal.service.tls import make_certs

STUDY = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small.dcm")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("tls")
    files = make_certs(root / "certs")
    extra = f'tls_cert = "{files.cert}"\ntls_key = "{files.key}"'
    return make_world(root, ["ito", "lee", "novak"], ["mallory"], extra=extra)


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world, scheme="https", ca=world.home.parent / "certs" / "ca.pem")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def run(world: World, gateway: GatewayProcess, monkeypatch, capsys):
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SCANSEAL_GATEWAY_URL", gateway.url)
    monkeypatch.setenv("SCANSEAL_GATEWAY_CA", str(gateway.ca))
    monkeypatch.setenv("COLUMNS", "250")

    def invoke(*args: str) -> Result:
        return run_cli(monkeypatch, capsys, *args)

    return invoke


def test_tls_needs_the_ca(gateway: GatewayProcess, world: World) -> None:
    untrusting = GatewayClient(gateway.url, world.people["lee"])
    with untrusting, pytest.raises(GatewayUnavailable, match="certificate"):
        untrusting.health()
    with GatewayClient(gateway.url, world.people["lee"], ca=gateway.ca) as trusting:
        assert trusting.health()["status"] == "ok"


def test_cli_send_fetch_grant_revoke_audit_verify(
    run, world: World, gateway: GatewayProcess, tmp_path: Path
) -> None:
    cards = world.cards
    sent = run("send", *map(str, STUDY), "--to", str(cards["lee"]), "--as", "ito",
               "--workdir", str(tmp_path))  # fmt: skip
    assert sent.code == 0, sent.err
    records = re.findall(r"record (b[a-z2-7]+)", sent.out)
    assert len(records) == 2
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fetched = run("fetch", *records, "-o", str(inbox), "--as", "lee")
    assert fetched.code == 0, fetched.err
    assert (inbox / records[0]).read_bytes() == STUDY[0].read_bytes()

    denied = run("fetch", records[0], "-o", str(tmp_path / "x.dcm"), "--as", "novak")
    assert denied.code == 4
    assert "denied by the ledger (no-grant)" in one_error_line(denied)
    assert run("grant", records[0], "--to", str(cards["novak"]), "--as", "ito").code == 0
    assert run("fetch", records[0], "-o", str(tmp_path / "n.dcm"), "--as", "novak").code == 0
    revoked = run("revoke", records[0], "--from", str(cards["novak"]), "--as", "ito")
    assert revoked.code == 0, revoked.err
    again = run("fetch", records[0], "-o", str(tmp_path / "m.dcm"), "--as", "novak")
    assert "(revoked)" in one_error_line(again)

    audit = run("audit", records[0], "--as", "ito", "--gateway", gateway.url)
    assert audit.code == 0, audit.err
    assert "DENIED" in audit.out
    assert "revoked" in audit.out
    verify = run("verify", records[0], "--gateway", gateway.url)
    assert verify.code == 0, verify.err
    assert "ledger record" in verify.out
    missing = run("send", str(tmp_path / "nope.dcm"), "--to", str(cards["lee"]), "--as", "ito")
    assert missing.code == 2
    one_error_line(missing)


def test_remote_audit_exports_json_and_csv(
    run, world: World, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """`audit --as --gateway` honours --json and --csv like the local form, both at once; the
    JSON is the gateway's trail as entries (ISO 8601 times, names), not its wire form."""
    sent = run("send", str(STUDY[0]), "--to", str(world.cards["lee"]), "--as", "ito",
               "--workdir", str(tmp_path))  # fmt: skip
    assert sent.code == 0, sent.err
    (record,) = re.findall(r"record (b[a-z2-7]+)", sent.out)
    denied = run("fetch", record, "-o", str(tmp_path / "x.dcm"), "--as", "novak")
    assert denied.code == 4
    with GatewayClient(gateway.url, world.people["ito"], ca=gateway.ca) as ito:
        served = ito.audit(record)

    out = tmp_path / "trail.csv"
    both = run("audit", record, "--as", "ito", "--gateway", gateway.url, "--json", "-",
               "--csv", str(out))  # fmt: skip
    assert both.code == 0, both.err
    printed = json.loads(both.out)  # the served trail as entries: ISO times, names, outcome
    same = ("time", "action", "outcome", "actor", "actor_name", "subject", "subject_name",
            "reason", "evidence", "tx_hash")  # fmt: skip
    assert [{k: e[k] for k in same} for e in printed] == [{k: e[k] for k in same} for e in served]
    assert all("timestamp" not in e for e in printed)
    assert served[-1]["action"] == "access"
    assert served[-1]["allowed"] is False
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8"))))
    assert [r["action"] for r in rows] == [e["action"] for e in served]
    assert [r["evidence"] for r in rows] == [e["evidence"] for e in served]
    assert rows[-1]["allowed"] == "DENIED"
    assert rows[-1]["reason"] == served[-1]["reason"] == "no-grant"

    csv_only = run("audit", record, "--as", "ito", "--gateway", gateway.url, "--csv", "-")
    assert csv_only.code == 0, csv_only.err
    assert list(csv.DictReader(io.StringIO(csv_only.out))) == rows
    assert "audit trail of" not in csv_only.out  # no table when exporting
