"""Hashes that prove an image is unchanged, and the Merkle tree that anchors many on the ledger.

`pixel_digest` is loaded on first use: it needs the image decoders (numpy, pydicom), which the
ledger and other users of the hash chain and the tree should not pay for at import time.
"""

from typing import TYPE_CHECKING

from scanseal.integrity.chain import HashChain, hash_chain, sha256_file, verify_chain
from scanseal.integrity.merkle import (
    MerkleTree,
    empty_root,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

if TYPE_CHECKING:
    from scanseal.integrity.pixels import pixel_digest


def __getattr__(name: str) -> object:
    if name == "pixel_digest":
        from scanseal.integrity.pixels import pixel_digest

        return pixel_digest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HashChain",
    "MerkleTree",
    "empty_root",
    "hash_chain",
    "leaf_hash",
    "node_hash",
    "pixel_digest",
    "sha256_file",
    "verify_chain",
    "verify_consistency",
    "verify_inclusion",
]
