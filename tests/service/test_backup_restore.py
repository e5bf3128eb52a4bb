"""A real gateway's home survives `scanseal backup` and `scanseal restore` onto another path.

A `scanseal serve` child process takes records (sent, fetched, one fetch denied), is stopped
and backed up; the original home is then deleted, the archive restored into a fresh home and a
gateway served there: the old records open with every hash checked against the restored
ledger, and their audit trails are the old ones, entry for entry, followed by the new fetch.
Run in both ledger modes (batched keeps its Merkle log and the anchors beside the journal).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from gateway_harness import PASSPHRASE, GatewayProcess, World, make_world
from scanseal.client import GatewayClient
from scanseal.crypto.identity import Keystore
from scanseal.errors import AccessDenied

STUDY = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small.dcm")]
pytestmark = pytest.mark.slow


def _scanseal(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scanseal", *args]
    return subprocess.run(command, env=world.env(), capture_output=True, text=True, timeout=180)


def _portable(world: World) -> None:
    """The configuration names its members directory relative to itself, as DEPLOY.md does."""
    text = world.config.read_text("utf-8")
    world.config.write_text(text.replace(f'members = "{world.home / "members"}"',
                                         'members = "members"'), "utf-8")  # fmt: skip
    assert 'members = "members"' in world.config.read_text("utf-8")


def _records(world: World, gateway: GatewayProcess, workdir: Path) -> list[str]:
    card, url = str(world.cards["lee"]), gateway.url
    sent = _scanseal(world, "send", *map(str, STUDY), "--to", card, "--as", "ito",
                     "--gateway", url, "--workdir", str(workdir))  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    records = re.findall(r"record (b[a-z2-7]+)", sent.stdout)
    assert len(records) == len(STUDY)
    return records


@pytest.mark.parametrize("mode", ["per-record", "batched"])
def test_a_restored_home_serves_its_old_records_and_trails(tmp_path: Path, mode: str) -> None:
    world = make_world(tmp_path / "a", ["ito", "lee"], ["mallory"], mode=mode)
    _portable(world)
    gateway = GatewayProcess(world).start()
    try:
        records = _records(world, gateway, tmp_path / "sent")
        first = _fetch(world, gateway, records[0], tmp_path / "first.dcm")
        assert first.read_bytes() == STUDY[0].read_bytes()
        mallory = GatewayClient(gateway.url, world.people["mallory"])
        with mallory, pytest.raises(AccessDenied, match="denied"):
            mallory.fetch(records[1], tmp_path / "stolen.dcm")
        running = _scanseal(world, "backup", str(tmp_path / "refused.tar"))
        assert running.returncode == 5, running.stderr
        assert "scanseal serve is already running" in running.stderr
        trails = {record: _trail(world, gateway, record) for record in records}
    finally:
        gateway.stop()
    archive = tmp_path / "dept-a.tar"
    made = _scanseal(world, "backup", str(archive))
    assert made.returncode == 0, made.stderr

    shutil.rmtree(world.home)  # the machine is gone; only the archive is left
    restored = World(tmp_path / "b" / "home", world.people, world.cards,
                     tmp_path / "b" / "home" / "scanseal.toml")  # fmt: skip
    back = _scanseal(restored, "restore", str(archive))
    assert back.returncode == 0, back.stderr
    assert Keystore(restored.home / "keys").load("gateway", PASSPHRASE).address == (
        world.people["gateway"].address
    )
    gateway = GatewayProcess(restored).start()
    try:
        for record, study in zip(records, STUDY, strict=True):
            opened = _fetch(restored, gateway, record, tmp_path / f"again-{record}.dcm")
            assert opened.read_bytes() == study.read_bytes()
            trail = _trail(restored, gateway, record)
            assert trail[: len(trails[record])] == trails[record]
            assert len(trail) > len(trails[record])  # the fetch from the restored gateway
            assert any(entry["action"] == "access" and entry["allowed"] for entry in trail)
    finally:
        gateway.stop()


def _fetch(world: World, gateway: GatewayProcess, record: str, out: Path) -> Path:
    fetched = _scanseal(world, "fetch", record, "-o", str(out), "--as", "lee",
                        "--gateway", gateway.url)  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    return out


def _trail(world: World, gateway: GatewayProcess, record: str) -> list[dict[str, object]]:
    """The record's audit trail as the gateway serves it, without the inclusion proofs (a
    batched entry's proof is against the latest anchor, which moves on)."""
    with GatewayClient(gateway.url, world.people["ito"]) as ito:
        trail = ito.audit(record)
    return [{k: v for k, v in entry.items() if k not in ("proof", "evidence")} for entry in trail]
