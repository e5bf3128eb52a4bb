"""The committed artifact is exactly what the pinned compiler makes of the committed source."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

from devnode import NODE_MODULES
from engine_support import missing_engine
from scanseal.ledger._artifact import load_artifact

from .conftest import ROOT

SOURCE = ROOT / "contracts" / "ImageRegistry.sol"
ARTIFACT = ROOT / "src" / "scanseal" / "ledger" / "ImageRegistry.json"


def test_recompiling_gives_identical_bytecode() -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "solc").is_dir():
        missing_engine("node with solc-js")
    assert node is not None
    fresh = subprocess.run(
        [node, str(ROOT / "contracts" / "compile.js"), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    committed = ARTIFACT.read_text("utf-8")
    assert json.loads(fresh)["bytecode"] == json.loads(committed)["bytecode"]
    assert fresh == committed, "run `make contracts` and commit the artifact"


def test_artifact_matches_source_and_pins_its_settings() -> None:
    artifact = load_artifact()
    assert artifact.source_sha256 == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert artifact.compiler["version"].startswith("0.8.37+")
    assert artifact.compiler["settings"]["evmVersion"] == "prague"
    assert artifact.compiler["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert artifact.deployed_bytecode[2:] in artifact.bytecode
