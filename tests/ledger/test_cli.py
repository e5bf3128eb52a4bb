"""`scanseal audit RECORD`: table, JSON and CSV, and one-line errors with stable exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
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
