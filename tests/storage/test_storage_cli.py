"""The storage and car commands, run as a user runs them (a child process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANSEAL_")}
    env.update(SCANSEAL_HOME=str(home), PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "scanseal", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_add_get_status_and_car(tmp_path):
    data = os.urandom(700_000)
    (tmp_path / "in.bin").write_bytes(data)
    added = _run(tmp_path / "a", "storage", "add", str(tmp_path / "in.bin"))
    assert added.returncode == 0, added.stderr
    cid = added.stdout.strip()
    assert cid.startswith("bafybei")

    got = _run(tmp_path / "a", "storage", "get", cid, "-o", str(tmp_path / "out.bin"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out.bin").read_bytes() == data

    status = _run(tmp_path / "a", "storage", "status")
    assert status.returncode == 0, status.stderr
    assert cid in status.stdout.replace("\n", "").replace("│", "").replace(" ", "")

    car = tmp_path / "x.car"
    exported = _run(tmp_path / "a", "car", "export", cid, "-o", str(car))
    assert exported.returncode == 0, exported.stderr
    imported = _run(tmp_path / "b", "car", "import", str(car))
    assert (imported.returncode, imported.stdout.strip()) == (0, cid)
    again = _run(tmp_path / "b", "storage", "get", cid, "-o", str(tmp_path / "again.bin"))
    assert again.returncode == 0
    assert (tmp_path / "again.bin").read_bytes() == data


def test_user_mistakes_are_one_line_errors(tmp_path):
    bad_cid = _run(tmp_path, "storage", "get", "not-a-cid", "-o", str(tmp_path / "o"))
    assert bad_cid.returncode == 2
    assert bad_cid.stderr.startswith("error: not a CID")
    assert "Traceback" not in bad_cid.stderr

    absent = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    missing = _run(tmp_path, "storage", "get", absent, "-o", str(tmp_path / "o"))
    assert missing.returncode == 6
    assert "not in the local store" in missing.stderr
    assert not (tmp_path / "o").exists()

    no_file = _run(tmp_path, "storage", "add", str(tmp_path / "nope"))
    assert no_file.returncode == 2
    assert "Traceback" not in no_file.stderr

    (tmp_path / "bad.toml").write_text("[storage]\nbackend = 'tape'\n")
    bad_config = _run(tmp_path, "storage", "status", "--config", str(tmp_path / "bad.toml"))
    assert bad_config.returncode == 2
    assert "backend must be one of" in bad_config.stderr


def test_a_rotten_block_fails_get_with_exit_3_and_no_output_file(tmp_path):
    (tmp_path / "in.bin").write_bytes(os.urandom(600_000))
    cid = _run(tmp_path / "h", "storage", "add", str(tmp_path / "in.bin")).stdout.strip()
    packs = list((tmp_path / "h" / "blocks" / "packs").iterdir())
    with open(packs[0], "r+b") as pack:
        pack.seek(100)
        byte = pack.read(1)
        pack.seek(100)
        pack.write(bytes([byte[0] ^ 0x80]))
    got = _run(tmp_path / "h", "storage", "get", cid, "-o", str(tmp_path / "out.bin"))
    assert got.returncode == 3, got.stderr
    assert "does not match its CID" in got.stderr
    assert not (tmp_path / "out.bin").exists()


def test_add_warns_that_the_object_is_stored_unencrypted(tmp_path):
    """One line on stderr, naming what makes it worse: a DICOM file's patient data."""
    from pydicom.data import get_testdata_file

    (tmp_path / "in.bin").write_bytes(os.urandom(1000))
    plain = _run(tmp_path / "h", "storage", "add", str(tmp_path / "in.bin"))
    assert plain.returncode == 0, plain.stderr
    (line,) = plain.stderr.splitlines()
    assert line.startswith("warning: in.bin is stored unencrypted")
    assert "`scanseal seal` or `scanseal send`" in line

    ct = str(get_testdata_file("CT_small.dcm"))
    dicom = _run(tmp_path / "h", "storage", "add", ct)
    assert dicom.returncode == 0, dicom.stderr
    (line,) = dicom.stderr.splitlines()
    assert line.startswith(
        "warning: CT_small.dcm, a DICOM file with patient data (PatientName, PatientID), "
        "is stored unencrypted"
    )
    assert dicom.stdout.strip().startswith("bafk")  # stdout stays the CID alone


def test_get_writes_its_output_owner_only_and_atomically(tmp_path):
    (tmp_path / "in.bin").write_bytes(os.urandom(300_000))
    cid = _run(tmp_path / "h", "storage", "add", str(tmp_path / "in.bin")).stdout.strip()
    out = tmp_path / "got" / "out.bin"
    out.parent.mkdir()
    old = os.umask(0o022)
    try:
        got = _run(tmp_path / "h", "storage", "get", cid, "-o", str(out))
        exported = _run(tmp_path / "h", "car", "export", cid, "-o", str(out.parent / "x.car"))
    finally:
        os.umask(old)
    assert got.returncode == 0, got.stderr
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes() == (tmp_path / "in.bin").read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    assert (out.parent / "x.car").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.bin", "x.car"]  # no temporary
