"""docs/DEPLOY.md's recipes, run as written: one department (identity, TLS, configuration, a
gateway, a study sent and fetched, a backup restored into a new home and served again), and
three departments on one anvil chain and two js-ipfs nodes (the owner appoints the other
gateways as admins; a study sent in department A is opened in department C, and refused to
department B). Everything on 127.0.0.1 and free ports, in a temporary directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from tests.docs.recipes import recipe, run_recipe
from tests.storage.jsipfs import JSIPFS, missing_reason

from devnode import anvil_binary
from gateway_harness import free_port
from scanseal.crypto.identity import IdentityCard

STUDY = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small.dcm")]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the recipes use curl"),
]


def _study(root: Path) -> Path:
    folder = root / "study"
    folder.mkdir(parents=True)
    for index, path in enumerate(STUDY):  # names keep the page's glob in this order
        shutil.copyfile(path, folder / f"{index:02d}-{path.name}")
    return folder


def _without_proofs(trail: list[dict[str, object]]) -> list[dict[str, object]]:
    """A batched entry's proof is against the latest anchor, which moves on: compare the rest."""
    return [{k: v for k, v in e.items() if k not in ("proof", "evidence")} for e in trail]


def test_the_blocks_are_found() -> None:
    assert len(recipe("DEPLOY.md", "one")) == 6
    assert len(recipe("DEPLOY.md", "three")) == 5


def test_one_department(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    variables = {
        "SCANSEAL_HOME": str(tmp_path / "var" / "scanseal"),
        "PASSFILE": str(tmp_path / "etc" / "passphrase"),
        "GATEWAY_NAME": "127.0.0.1",
        "LISTEN": "127.0.0.1",
        "PORT": str(free_port()),
        "DICOM_PORT": str(free_port()),
        "WORKSTATION": str(tmp_path / "workstation"),
        "STUDY": str(_study(tmp_path)),
        "BACKUPS": str(tmp_path / "backups"),
    }
    (tmp_path / "etc").mkdir()
    run = run_recipe(recipe("DEPLOY.md", "one"), work, variables, timeout=240)
    assert run.code == 0, run.log[-6000:]
    assert not run.left_behind  # the trap stopped every job by its PID; none was left over
    first = sorted(Path(variables["STUDY"]).iterdir())[0]
    assert (work / "received.dcm").read_bytes() == first.read_bytes()
    assert (work / "received-again.dcm").read_bytes() == first.read_bytes()
    before = json.loads((work / "trail-before.json").read_text("utf-8"))
    after = json.loads((work / "trail-after.json").read_text("utf-8"))
    assert _without_proofs(after)[: len(before)] == _without_proofs(before)
    assert len(after) == len(before) + 1  # the fetch from the restored home
    restored = Path(variables["SCANSEAL_HOME"] + ".restored")
    assert (restored / "keys" / "gateway.json").is_file()
    (archive,) = Path(variables["BACKUPS"]).glob("scanseal-*.tar")
    assert archive.stat().st_mode & 0o777 == 0o600


@pytest.mark.integration
def test_three_departments_on_one_chain(tmp_path: Path) -> None:
    anvil = anvil_binary()
    if anvil is None:
        pytest.skip("anvil is not installed: run `make install-contracts`")
    if (reason := missing_reason()) is not None:
        pytest.skip(reason)
    root = tmp_path / "consortium"
    variables = {
        "ROOT": str(root),
        "CHAIN_PORT": str(free_port()),
        "IPFS_PORTS": f"{free_port()} {free_port()}",
        "A_PORT": str(free_port()),
        "B_PORT": str(free_port()),
        "C_PORT": str(free_port()),
        "ANVIL": str(anvil),
        "JSIPFS": str(JSIPFS),
        "STUDY": str(_study(tmp_path)),
    }
    run = run_recipe(recipe("DEPLOY.md", "three"), tmp_path, variables, timeout=300)
    assert run.code == 0, run.log[-6000:]
    assert not run.left_behind
    sent = (root / "sent.txt").read_text().splitlines()  # instance lines, then the study's
    records = [line.split()[2] for line in sent if " record " in line]
    for record, original in zip(records, sorted(Path(variables["STUDY"]).iterdir()), strict=True):
        assert (root / "received-in-c" / record).read_bytes() == original.read_bytes()
    dr_c = IdentityCard.load(root / "dr-c.card.json").address
    dr_b = IdentityCard.load(root / "b" / "members" / "dr-b.card.json").address
    trail = json.loads((root / "trail.json").read_text("utf-8"))
    actions = {(e["action"], e.get("subject"), e.get("allowed")) for e in trail}
    assert ("granted", dr_c, None) in actions
    assert ("access", dr_c, True) in actions
    assert ("access", dr_b, False) in actions
    print(f"three-department recipe: {run.seconds:.0f} s")
