"""The compiled ImageRegistry contract, committed next to this module.

Python-only installs never need node: `make contracts` recompiles the Solidity source with the
pinned solc-js into ImageRegistry.json, and a test checks that the committed bytecode is exactly
what the pinned compiler produces from the committed source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of the contract, with the compiler settings that produced them."""

    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: dict[str, Any]
    source_sha256: str


@cache
def load_artifact() -> Artifact:
    """Read the committed artifact once per process."""
    text = resources.files("scanseal.ledger").joinpath("ImageRegistry.json").read_text("utf-8")
    raw = json.loads(text)
    return Artifact(
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
        compiler=raw["compiler"],
        source_sha256=raw["sourceSha256"],
    )
