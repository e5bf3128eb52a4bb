"""`scanseal audit RECORD`: table, JSON and CSV, and one-line errors with stable exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
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
