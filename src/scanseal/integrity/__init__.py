"""Hashes that prove an image is unchanged, and the Merkle tree that anchors many on the ledger."""

from scanseal.integrity.chain import HashChain, hash_chain, sha256_file, verify_chain
from scanseal.integrity.merkle import (
    MerkleTree,
    empty_root,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "HashChain",
    "MerkleTree",
    "empty_root",
    "hash_chain",
    "leaf_hash",
    "node_hash",
    "sha256_file",
    "verify_chain",
    "verify_consistency",
    "verify_inclusion",
]
