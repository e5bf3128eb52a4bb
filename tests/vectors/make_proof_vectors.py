"""Regenerate tests/vectors/proof_file.json, the vector of docs/LEDGER.md ("Proof files").

Run by hand (``python tests/vectors/make_proof_vectors.py``) and commit the output; the tests
check the committed values, so a change to the format cannot pass silently. Everything is
fixed: three batched entries of fixed fields, an operator and uploader of fixed keys, and, for
the chain side, example values (a verifier reads those from the chain and compares).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from scanseal.integrity.merkle import MerkleTree, leaf_hash
from scanseal.ledger import BatchProof, Entry, ProofFile, record_id

OUT = Path(__file__).with_name("proof_file.json")
OPERATOR = Account.from_key(bytes(range(1, 33))).address
UPLOADER = Account.from_key(bytes(range(2, 34))).address
CONTRACT = to_checksum_address("0x" + keccak(b"example ImageRegistry")[-20:].hex())
CHAIN_ID = 131277322940537  # the embedded chain's
STAMP = 1795000000


def _cid(n: int) -> bytes:
    return b"\x01\x55\x12\x20" + keccak(f"record {n}".encode())


def _entry(n: int) -> Entry:
    if n == 2:  # an access entry: a denied download of record 1
        return Entry("access", record_id(_cid(1)), UPLOADER, STAMP + n, OPERATOR,
                     access_type=2, allowed=False, reason=1)  # fmt: skip
    digest = keccak(f"hashes {n}".encode())
    hashes = {"image_hash": digest, "h3": keccak(digest), "pixel_digest": keccak(keccak(digest))}
    return Entry("record", record_id(_cid(n)), UPLOADER, STAMP + n, OPERATOR, cid=_cid(n), **hashes)


def vector() -> dict[str, Any]:
    leaves = [_entry(n).encode() for n in range(3)]
    tree = MerkleTree()
    for data in leaves:
        tree.append_leaf_hash(leaf_hash(data))
    proof = BatchProof(
        OPERATOR, 0, 1, 3, tree.root(3), leaves[1], tuple(tree.inclusion_proof(1, 3))
    )
    file = ProofFile(_cid(1), CHAIN_ID, CONTRACT, proof, "0x" + keccak(b"example anchor").hex(),
                     42, keccak(b"example block"))  # fmt: skip
    return {
        "leaves": ["0x" + data.hex() for data in leaves],
        "leaf_hash": "0x" + leaf_hash(leaves[1]).hex(),
        "record_id": "0x" + record_id(_cid(1)).hex(),
        "proof_file": file.to_json(),
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(vector(), indent=2) + "\n", "utf-8")
