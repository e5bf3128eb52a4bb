"""Append-only Merkle tree with inclusion and consistency proofs (RFC 6962 §2.1, RFC 9162 §2.1).

The ledger anchors many records with one transaction by publishing the root of this tree; each
record then carries an inclusion proof, and an auditor who saw an earlier root checks with a
consistency proof that the log only grew. Leaves and interior nodes are hashed with distinct
one-byte prefixes (0x00, 0x01) so a leaf can never be passed off as an interior node.

Proofs are produced with RFC 6962's PATH and SUBPROOF definitions and verified with RFC 9162's
iterative algorithms, so they interoperate with Certificate Transparency tooling.

Every hash of a complete, aligned subtree (2**k leaves starting at a multiple of 2**k) is cached
when its last leaf arrives. Any range the RFC recursion visits splits into at most log2(n) such
subtrees, so roots and proofs cost O(log n) hashes whatever the size, and appending is amortised
O(1). Each level is one bytearray, 32 bytes per node, to keep a million-leaf tree near 64 MiB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from scanseal.errors import IntegrityError, InvalidInput

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash a leaf's data: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """Root of the tree with no leaves: SHA-256 of the empty string."""
    return hashlib.sha256(b"").digest()


class MerkleTree:
    """An append-only Merkle tree over leaf hashes, able to prove any historic state.

    Because leaves are never removed or changed, the tree of the first `size` leaves is the same
    object at every later time; `root`, `inclusion_proof` and `consistency_proof` therefore accept
    any size up to the current one.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for leaf in leaf_hashes:
            self.append_leaf_hash(leaf)

    def append(self, data: bytes) -> int:
        """Add a leaf holding `data` and return its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Add a leaf whose hash is already known and return its index."""
        _check_hash(leaf, "leaf hash")
        index = self._size
        self._levels[0] += leaf
        self._size += 1
        self._cache_completed_subtrees(index)
        return index

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the tree made of the first `size` leaves (default: all of them)."""
        size = self._resolve_size(size)
        if size == 0:
            return empty_root()
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path proving leaf `index` is in the tree of the first `size` leaves."""
        size = self._resolve_size(size)
        if not 0 <= index < size:
            raise InvalidInput(f"leaf index {index} is outside a tree of {size} leaves")
        return self._path(index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`.

        The proof is empty when `old_size` is 0 or equal to `new_size`: those cases are checked by
        comparing roots alone.
        """
        new_size = self._resolve_size(new_size)
        if not 0 <= old_size <= new_size:
            raise InvalidInput(f"cannot prove size {old_size} is a prefix of size {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, new_size)

    def _resolve_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise InvalidInput(f"tree size {size} is outside 0..{self._size}")
        return size

    def _cache_completed_subtrees(self, index: int) -> None:
        """Store the hash of every aligned subtree whose last leaf is `index`."""
        level = 0
        while index & 1:
            right = self._node(level, index)
            left = self._node(level, index - 1)
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level + 1] += node_hash(left, right)
            index >>= 1
            level += 1

    def _node(self, level: int, index: int) -> bytes:
        start = index * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])

    def _aligned_hash(self, start: int, count: int) -> bytes:
        """Hash of the complete subtree of `count` (a power of two) leaves at `start`."""
        level = count.bit_length() - 1
        return self._node(level, start >> level)

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), a range the RFC 6962 recursion can reach.

        Such a range starts at a multiple of the largest power of two not above its length, so it
        splits into complete aligned subtrees, one per set bit of its length, largest first; the
        RFC's right-leaning recursion folds them from the right.
        """
        pieces: list[bytes] = []
        remaining = end - start
        while remaining:
            count = 1 << (remaining.bit_length() - 1)
            pieces.append(self._aligned_hash(start, count))
            start += count
            remaining -= count
        result = pieces.pop()
        while pieces:
            result = node_hash(pieces.pop(), result)
        return result

    def _path(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]), unrolled from the root down."""
        siblings: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            mid = start + _split_point(end - start)
            if index < mid:
                siblings.append(self._range_hash(mid, end))
                end = mid
            else:
                siblings.append(self._range_hash(start, mid))
                start = mid
        siblings.reverse()
        return siblings

    def _subproof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 SUBPROOF(old_size, D[0:new_size], true), unrolled from the root down."""
        nodes: list[bytes] = []
        start, end, old_is_whole_subtree = 0, new_size, True
        while old_size != end:
            mid = start + _split_point(end - start)
            if old_size <= mid:
                nodes.append(self._range_hash(mid, end))
                end = mid
            else:
                nodes.append(self._range_hash(start, mid))
                start = mid
                old_is_whole_subtree = False
        if not old_is_whole_subtree:
            nodes.append(self._range_hash(start, end))
        nodes.reverse()
        return nodes


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` (a leaf hash) sits at `index` in the tree of `size` leaves with `root`.

    Follows RFC 9162 §2.1.3.2. Raises InvalidInput for impossible arguments and IntegrityError
    when the proof does not lead to `root`.
    """
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root")
    if not 0 <= index < size:
        raise InvalidInput(f"leaf index {index} is outside a tree of {size} leaves")
    if _root_from_inclusion_path(leaf, index, size, proof) != root:
        raise IntegrityError(f"inclusion proof for leaf {index} of {size} does not match the root")


def _root_from_inclusion_path(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    node, last = index, size - 1
    result = leaf
    for sibling in proof:
        _check_proof_hash(sibling)
        if last == 0:
            raise IntegrityError("inclusion proof is longer than the tree is deep")
        if node & 1 or node == last:
            result = node_hash(sibling, result)
            node, last = _skip_right_edge(node, last)
        else:
            result = node_hash(result, sibling)
        node >>= 1
        last >>= 1
    if last != 0:
        raise IntegrityError("inclusion proof is shorter than the tree is deep")
    return result


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree with `old_root` is a prefix of the tree with `new_root`.

    Follows RFC 9162 §2.1.4.2. The empty tree is a prefix of every tree, and a tree of the same
    size must have the same root; both take an empty proof. Raises InvalidInput for impossible
    sizes and IntegrityError when the proof does not lead to both roots.
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if not 0 <= old_size <= new_size:
        raise InvalidInput(f"cannot prove size {old_size} is a prefix of size {new_size}")
    if old_size == 0 or old_size == new_size:
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    if not proof:
        raise IntegrityError("consistency proof is empty")
    old_computed, new_computed = _roots_from_consistency_path(old_size, new_size, old_root, proof)
    if old_computed != old_root:
        raise IntegrityError(f"consistency proof does not match the root of size {old_size}")
    if new_computed != new_root:
        raise IntegrityError(f"consistency proof does not match the root of size {new_size}")


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise IntegrityError(f"consistency proof from size {old_size} must be empty")
    if old_size == 0 and old_root != empty_root():
        raise IntegrityError("old root is not the root of the empty tree")
    if old_size == new_size and old_root != new_root:
        raise IntegrityError(f"two different roots for the same size {new_size}")


def _roots_from_consistency_path(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    path = list(proof)
    if _is_power_of_two(old_size):
        path.insert(0, old_root)
    for element in path:
        _check_proof_hash(element)
    node, last = old_size - 1, new_size - 1
    while node & 1:
        node >>= 1
        last >>= 1
    old_result = new_result = path[0]
    for sibling in path[1:]:
        if last == 0:
            raise IntegrityError("consistency proof is longer than the trees need")
        if node & 1 or node == last:
            old_result = node_hash(sibling, old_result)
            new_result = node_hash(sibling, new_result)
            node, last = _skip_right_edge(node, last)
        else:
            new_result = node_hash(new_result, sibling)
        node >>= 1
        last >>= 1
    if last != 0:
        raise IntegrityError("consistency proof is shorter than the trees need")
    return old_result, new_result


def _skip_right_edge(node: int, last: int) -> tuple[int, int]:
    """Climb past levels where the node is a lone right-edge child that the RFC tree omits."""
    if not node & 1:
        while node and not node & 1:
            node >>= 1
            last >>= 1
    return node, last


def _split_point(count: int) -> int:
    """Largest power of two strictly below `count` (count >= 2), where RFC 6962 splits."""
    return 1 << ((count - 1).bit_length() - 1)


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise InvalidInput(f"{what} must be {HASH_SIZE} bytes")


def _check_proof_hash(value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise IntegrityError(f"proof element is not a {HASH_SIZE}-byte hash")


__all__ = [
    "HASH_SIZE",
    "MerkleTree",
    "empty_root",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]
