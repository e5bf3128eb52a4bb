"""Regenerate tests/vectors/*.json from the literal RFC 6962 reference and hashlib.

Run from the repository root: python -m tests.integrity.write_vectors
The tests check that the committed files equal what this produces, so an edit by hand fails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .reference import CT_LEAVES, mth, path, proof

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MERKLE_FILE = VECTORS / "merkle_rfc6962.json"
CHAIN_FILE = VECTORS / "hash_chain.json"

CHAIN_INPUTS: tuple[tuple[bytes, bytes, int], ...] = (
    (b"", b"", 0),
    (
        b"ScanSeal hash chain vector 1\n",
        b'{"Modality":"CT","PatientID":"ANON0001","StudyInstanceUID":"1.2.3.4"}',
        1767225600,
    ),
    (bytes(range(256)), '{"Name":"Zoë"}'.encode(), (1 << 64) - 1),
)


def merkle_vectors() -> dict[str, Any]:
    leaves = list(CT_LEAVES)
    n = len(leaves)
    return {
        "description": "RFC 6962 Merkle tree over the Certificate Transparency test leaves",
        "leaves": [leaf.hex() for leaf in leaves],
        "leaf_hashes": [hashlib.sha256(b"\x00" + leaf).hexdigest() for leaf in leaves],
        "roots": [{"size": size, "root": mth(leaves[:size]).hex()} for size in range(n + 1)],
        "inclusion": [
            {"index": index, "size": size, "proof": _hexes(path(index, leaves[:size]))}
            for size in range(1, n + 1)
            for index in range(size)
        ],
        "consistency": [
            {"old_size": old, "new_size": new, "proof": _hexes(proof(old, leaves[:new]))}
            for new in range(1, n + 1)
            for old in range(new + 1)
        ],
    }


def chain_vectors() -> dict[str, Any]:
    cases = []
    for file_bytes, metadata, timestamp in CHAIN_INPUTS:
        h1 = hashlib.sha256(file_bytes).digest()
        h2 = hashlib.sha256(h1 + metadata).digest()
        h3 = hashlib.sha256(h2 + timestamp.to_bytes(8, "big")).digest()
        cases.append(
            {
                "file_hex": file_bytes.hex(),
                "metadata_hex": metadata.hex(),
                "timestamp": timestamp,
                "h1": h1.hex(),
                "h2": h2.hex(),
                "h3": h3.hex(),
            }
        )
    return {"description": "ScanSeal hash chain H1, H2, H3", "cases": cases}


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1) + "\n"


def _hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


if __name__ == "__main__":
    MERKLE_FILE.write_text(render(merkle_vectors()), encoding="utf-8")
    CHAIN_FILE.write_text(render(chain_vectors()), encoding="utf-8")
