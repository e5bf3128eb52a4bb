"""State files are owner-only: the forwarding agent's state and the DICOM index hold patient
names, the gateway's state holds identities. Another local user must not read them."""

from __future__ import annotations

import stat
from pathlib import Path

from scanseal._sqlite import open_database
from scanseal.dicom.agent import ForwardState, Labels

SCHEMA = "CREATE TABLE IF NOT EXISTS t (v TEXT);"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_state_file_and_its_journal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "s.sqlite3"
    db = open_database(path, SCHEMA)
    try:
        db.execute("INSERT INTO t VALUES ('DOE^JANE')")
        assert _mode(path) == 0o600
        assert _mode(path.parent) == 0o700
        for journal in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            assert journal.exists()
            assert _mode(journal) == 0o600
    finally:
        db.close()


def test_an_older_world_readable_state_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    open_database(path, SCHEMA).close()
    path.chmod(0o644)
    open_database(path, SCHEMA).close()
    assert _mode(path) == 0o600


def test_the_agent_state_with_patient_names_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "forward.sqlite3"
    state = ForwardState(path)
    try:
        state.discovered("http://g", 1, ["bafkone"], 1.0)
        state.labelled("bafkone", Labels("1.2.3", "CT", "DOE^JANE", "P7", "1.2.3.4"))
    finally:
        state.close()
    assert b"DOE^JANE" in path.read_bytes()
    assert _mode(path) == 0o600
