"""The proof file vector of docs/LEDGER.md (tests/vectors/proof_file.json): parsed, written back
byte-identically, and its inclusion path checked against a tree rebuilt from the leaves."""

from __future__ import annotations

import json

import pytest

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.integrity.merkle import MerkleTree, leaf_hash
from scanseal.ledger import PROOF_FORMAT, Entry, ProofFile, check_proof, record_id

from .conftest import ROOT

VECTOR = json.loads((ROOT / "tests/vectors/proof_file.json").read_text("utf-8"))


def test_vector_parses_and_round_trips() -> None:
    parsed = ProofFile.from_json(VECTOR["proof_file"])
    assert parsed.to_json() == VECTOR["proof_file"]
    assert VECTOR["proof_file"]["format"] == PROOF_FORMAT


def test_vector_proof_leads_to_the_root_of_its_leaves() -> None:
    parsed = ProofFile.from_json(VECTOR["proof_file"])
    leaves = [bytes.fromhex(leaf[2:]) for leaf in VECTOR["leaves"]]
    tree = MerkleTree()
    for data in leaves:
        tree.append_leaf_hash(leaf_hash(data))
    proof = parsed.proof
    assert proof.root == tree.root(len(leaves))
    assert proof.entry == leaves[proof.index]
    assert "0x" + leaf_hash(proof.entry).hex() == VECTOR["leaf_hash"]
    entry = check_proof(proof)
    assert isinstance(entry, Entry)
    assert entry.cid == parsed.record
    assert "0x" + record_id(parsed.record).hex() == VECTOR["record_id"]
    raw = json.loads(json.dumps(VECTOR["proof_file"]))
    raw["proof"]["path"].reverse()
    swapped = ProofFile.from_json(raw)
    with pytest.raises(IntegrityError):
        check_proof(swapped.proof)


@pytest.mark.parametrize(
    "change",
    [{"format": "scanseal-inclusion-proof/2"}, {"chain_id": -1}, {"contract": "0x12"},
     {"anchor": {"tx_hash": "0x12", "block_number": 1, "block_hash": "0x" + "00" * 32}},
     {"record": "01"}],
)  # fmt: skip
def test_malformed_files_are_invalid_input(change: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        ProofFile.from_json({**VECTOR["proof_file"], **change})
