"""`scanseal audit RECORD`: table, JSON and CSV, and one-line errors with stable exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from base64 import b32encode
from pathlib import Path

import pytest

from scanseal._cli.ledger import parse_cid
from scanseal.errors import InvalidInput
from scanseal.ledger import AccessType, Ledger, LedgerConfig

from .conftest import ROOT, Cast, new_cid, populate


def _multibase32(cid: bytes) -> str:
    return "b" + b32encode(cid).decode().lower().rstrip("=")


@pytest.fixture
def home(tmp_path: Path, cast: Cast) -> tuple[Path, bytes]:
    with Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=cast.owner) as ledger:
        cid, _ = populate(ledger, cast)
        ledger.log_access(cast.admin, cid, cast.stranger.address, AccessType.DOWNLOAD)
    return tmp_path, cid


def _scanseal(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCANSEAL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "scanseal", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_audit_table_json_and_csv(home: tuple[Path, bytes], tmp_path: Path) -> None:
    path, cid = home
    out = tmp_path / "trail.csv"
    done = _scanseal(path, "audit", _multibase32(cid), "--json", "-", "--csv", str(out))
    assert done.returncode == 0, done.stderr
    trail = json.loads(done.stdout)
    assert [e["action"] for e in trail] == [
        "stored",
        "granted",
        "granted",
        "revoked",
        "access",
    ]
    assert trail[-1]["allowed"] is False
    assert trail[-1]["reason"] == "no-grant"
    assert all(e["tx_hash"].startswith("0x") for e in trail)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["action"] for r in rows] == [e["action"] for e in trail]
    assert rows[-1]["allowed"] == "DENIED"
    table = _scanseal(path, "audit", "0x" + cid.hex())
    assert table.returncode == 0, table.stderr
    assert "revoked" in table.stdout
    assert "DENIED" in table.stdout


def test_audit_errors_are_one_line(home: tuple[Path, bytes]) -> None:
    path, _ = home
    unknown = _scanseal(path, "audit", _multibase32(new_cid()))
    assert unknown.returncode == 6
    assert unknown.stderr.strip().startswith("error: no ledger events")
    bad = _scanseal(path, "audit", "not-a-cid")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1


def test_parse_cid_forms() -> None:
    cid = bytes.fromhex("01551220") + bytes(range(32))
    assert parse_cid(_multibase32(cid)) == cid
    assert parse_cid("f" + cid.hex()) == cid
    assert parse_cid("0x" + cid.hex()) == cid
    v0 = parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
    assert v0[:2] == b"\x12\x20"
    assert len(v0) == 34
    with pytest.raises(InvalidInput):
        parse_cid("bafy!")


SCHEMA = ROOT / "src" / "scanseal" / "audit" / "dicom-audit-message.rng"


def test_audit_format_json_csv_and_table_say_what_and_when(
    home: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, cid = home
    out = tmp_path / "trail.json"
    done = _scanseal(path, "audit", _multibase32(cid), "--format", "json", "-o", str(out))
    assert done.returncode == 0, done.stderr
    trail = json.loads(out.read_text())
    keys = {"action", "outcome", "actor", "actor_name", "subject", "time", "reason", "evidence"}
    assert all(keys <= set(e) for e in trail)
    assert [e["action"] for e in trail] == ["stored", "granted", "granted", "revoked", "access"]
    assert [e["outcome"] for e in trail] == ["success"] * 4 + ["denied"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["time"]) for e in trail)
    assert "timestamp" not in trail[0]
    csv_text = _scanseal(path, "audit", _multibase32(cid), "-f", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["time"] for r in rows] == [e["time"] for e in trail]
    table = _scanseal(path, "audit", _multibase32(cid), "--format", "table").stdout
    assert trail[0]["time"] in table
    assert "DENIED" in table


def test_audit_format_fhir_is_a_valid_r4_bundle(home: tuple[Path, bytes]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    path, cid = home
    done = _scanseal(path, "audit", _multibase32(cid), "--format", "fhir")
    assert done.returncode == 0, done.stderr
    raw = json.loads(done.stdout)
    bundle = Bundle.model_validate(raw)
    assert bundle.type == "collection"
    events = [entry["resource"] for entry in raw["entry"]]
    assert {e["resourceType"] for e in events} == {"AuditEvent"}
    assert [e["type"]["code"] for e in events] == ["110107", "110113", "110113", "110113", "110103"]
    assert [e["outcome"] for e in events] == ["0", "0", "0", "0", "4"]
    assert events[-1]["outcomeDesc"] == "no-grant"
    assert all(e["recorded"].endswith("Z") and e["agent"] for e in events)
    assert events[-1]["entity"][0]["what"]["identifier"]["value"].startswith("ipfs://")


def test_audit_fhir_release_r5_is_a_valid_r5_bundle(home: tuple[Path, bytes]) -> None:
    """``--fhir-release R5``: the same events as R5 AuditEvents, validated with fhir.resources'
    default (R5) models; R4, the default, stays what it was and is no valid R5 (and back)."""
    from fhir.resources.bundle import Bundle
    from fhir.resources.R4B.bundle import Bundle as R4Bundle
    from pydantic import ValidationError

    path, cid = home
    done = _scanseal(path, "audit", _multibase32(cid), "--format", "fhir", "--fhir-release", "R5")
    assert done.returncode == 0, done.stderr
    raw = json.loads(done.stdout)
    assert Bundle.model_validate(raw).type == "collection"
    events = [entry["resource"] for entry in raw["entry"]]
    assert [e["category"][0]["coding"][0]["code"] for e in events] == [
        "110107", "110113", "110113", "110113", "110103",
    ]  # fmt: skip
    assert all(e["code"]["coding"][0]["system"].endswith("/DCM") for e in events)
    assert [e["outcome"]["code"]["code"] for e in events] == ["0", "0", "0", "0", "4"]
    assert events[-1]["outcome"]["detail"] == [{"text": "no-grant"}]
    assert all(a["who"]["identifier"]["value"].startswith("urn:eip155:account:0x")
               for e in events for a in e["agent"])  # fmt: skip
    assert events[-1]["entity"][0]["what"]["identifier"]["value"].startswith("ipfs://")
    with pytest.raises(ValidationError):
        R4Bundle.model_validate(raw)
    r4 = json.loads(_scanseal(path, "audit", _multibase32(cid), "--format", "fhir").stdout)
    explicit = _scanseal(path, "audit", _multibase32(cid), "-f", "fhir", "--fhir-release", "R4")
    assert json.loads(explicit.stdout) == r4
    with pytest.raises(ValidationError):
        Bundle.model_validate(r4)
    bad = _scanseal(path, "audit", _multibase32(cid), "-f", "fhir", "--fhir-release", "R6")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_audit_format_dicom_validates_against_the_ps3_15_schema(
    home: tuple[Path, bytes],
) -> None:
    from lxml import etree

    path, cid = home
    done = _scanseal(path, "audit", _multibase32(cid), "--format", "dicom")
    assert done.returncode == 0, done.stderr
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    document = etree.fromstring(done.stdout.encode())
    assert schema.validate(document), schema.error_log
    messages = document.findall("AuditMessage")
    assert [m.find("EventIdentification/EventID").get("csd-code") for m in messages] == [
        "110107", "110113", "110113", "110113", "110103",
    ]  # fmt: skip
    denied = messages[-1].find("EventIdentification")
    assert (denied.get("EventOutcomeIndicator"), denied.get("EventActionCode")) == ("4", "R")
    assert denied.find("EventID").get("codeSystemName") == "DCM"
    for message in messages:  # each one alone is a valid AuditMessage as syslog carries it
        assert schema.validate(etree.fromstring(etree.tostring(message)))
    broken = etree.fromstring(etree.tostring(messages[0]))
    for participant in broken.findall("ActiveParticipant"):
        broken.remove(participant)
    assert not schema.validate(broken)  # the schema does check: no participant, no message


def test_audit_format_errors_are_one_line(home: tuple[Path, bytes], tmp_path: Path) -> None:
    path, cid = home
    bad = _scanseal(path, "audit", _multibase32(cid), "--format", "xml")
    assert bad.returncode == 2
    missing = tmp_path / "no" / "such" / "dir" / "out.json"
    unwritable = _scanseal(path, "audit", _multibase32(cid), "-f", "json", "-o", str(missing))
    assert unwritable.returncode == 2, unwritable.stderr
    assert unwritable.stderr.strip().startswith("error: cannot write")
    assert unwritable.stderr.count("\n") == 1
    assert not missing.parent.exists()


RSYSLOGD = "/usr/sbin/rsyslogd"
GTLS = Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so")


def _rsyslog_or_skip() -> None:
    """rsyslog with its GnuTLS driver from Debian: installed when root and missing."""
    if Path(RSYSLOGD).exists() and GTLS.exists():
        return
    if os.geteuid() != 0:
        pytest.skip("rsyslog and rsyslog-gnutls are not installed (and not root to install)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "rsyslog", "rsyslog-gnutls"]
    done = subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
    if done.returncode != 0 or not GTLS.exists():
        pytest.skip(f"could not install rsyslog-gnutls: {done.stderr[-300:]!r}")


def _rsyslog_config(work: Path, port: int, certs: object, out: Path) -> Path:
    conf = work / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{work}" maxMessageSize="64k"\n'
        f'  DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{certs.ca}"\n'  # type: ignore[attr-defined]
        f'  DefaultNetstreamDriverCertFile="{certs.cert}"\n'  # type: ignore[attr-defined]
        f'  DefaultNetstreamDriverKeyFile="{certs.key}")\n'  # type: ignore[attr-defined]
        'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1"\n'
        '  StreamDriver.AuthMode="anon")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{port}")\n'
        f'action(type="omfile" file="{out}" template="RSYSLOG_SyslogProtocol23Format")\n',
        "utf-8",
    )
    return conf


def test_audit_send_reaches_a_real_rsyslog_over_tls(
    home: tuple[Path, bytes], tmp_path: Path
) -> None:
    """`scanseal audit --send`: RFC 5424 over TLS (RFC 5425 framing) to rsyslog on 127.0.0.1;
    every event arrives as one DICOM AuditMessage that validates against the schema."""
    from lxml import etree

    from scanseal.service.tls import make_certs

    _rsyslog_or_skip()
    path, cid = home
    work = tmp_path / "rsyslog"
    work.mkdir()
    certs = make_certs(work / "certs", ["127.0.0.1"])
    port, received = free_port(), work / "received.log"
    conf = _rsyslog_config(work, port, certs, received)
    daemon = subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "rsyslog.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for_port(port, daemon)
        (path / "scanseal.toml").write_text(
            f'[audit]\nsyslog = "127.0.0.1:{port}"\nca = "{certs.ca}"\n', "utf-8"
        )
        done = _scanseal(path, "audit", _multibase32(cid), "--send")
        assert done.returncode == 0, done.stderr
        assert f"sent 5 audit messages to 127.0.0.1:{port}" in done.stderr
        lines = _lines_when_written(received, 5)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    codes = []
    for line in lines:
        assert line.startswith("<85>1 ")  # authpriv.notice, RFC 5424 version 1
        assert " scanseal " in line
        assert " IHE+RFC-3881 " in line
        message = etree.fromstring(line[line.index("<AuditMessage") :].encode())
        assert schema.validate(message), schema.error_log
        codes.append(message.find("EventIdentification/EventID").get("csd-code"))
    assert codes == ["110107", "110113", "110113", "110113", "110103"]


def test_audit_send_without_a_repository_is_one_line(home: tuple[Path, bytes]) -> None:
    path, cid = home
    done = _scanseal(path, "audit", _multibase32(cid), "--send")
    assert done.returncode == 2
    assert done.stderr.strip() == 'error: no audit repository: set [audit] syslog = "host:port"'
    (path / "scanseal.toml").write_text(f'[audit]\nsyslog = "127.0.0.1:{free_port()}"\n')
    down = _scanseal(path, "audit", _multibase32(cid), "--send")
    assert down.returncode == 5
    assert down.stderr.startswith("error: audit repository 127.0.0.1:")
    assert down.stderr.count("\n") == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"rsyslogd exited: {daemon.stderr.read()!r}")  # type: ignore[union-attr]
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("rsyslogd did not listen")


def _lines_when_written(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = path.read_text("utf-8").splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"rsyslog wrote {path.read_text() if path.exists() else 'nothing'}")


def test_audit_admin_lists_the_registrys_administrative_changes(
    home: tuple[Path, bytes],
) -> None:
    from lxml import etree

    path, cid = home
    done = _scanseal(path, "audit", "--admin", "-f", "json")
    assert done.returncode == 0, done.stderr
    changes = json.loads(done.stdout)
    assert {e["action"] for e in changes} == {"admin"}
    details = [e["detail"].split(":")[0] for e in changes]
    assert details == [
        "ownership transferred",
        "admin enabled",
        "identity registered",
        "identity registered",
        "identity registered",
        "uploader authorized",
    ]
    dicom = _scanseal(path, "audit", "--admin", "-f", "dicom")
    document = etree.fromstring(dicom.stdout.encode())
    assert etree.RelaxNG(etree.parse(str(SCHEMA))).validate(document)
    subtypes = [e.get("csd-code") for e in document.iter("EventTypeCode")]
    assert subtypes == ["110136", "110136", "110137", "110137", "110137", "110136"]
    objects = {
        e.get("ParticipantObjectID") for e in document.iter("ParticipantObjectIdentification")
    }
    assert len(objects) == 1
    assert objects.pop().startswith("eip155:")
    both = _scanseal(path, "audit", _multibase32(cid), "--admin")
    assert both.returncode == 2
    assert both.stderr.strip() == "error: --admin reads the ledger itself and takes no RECORD"
    neither = _scanseal(path, "audit")
    assert neither.returncode == 2
    assert neither.stderr.count("\n") == 1
