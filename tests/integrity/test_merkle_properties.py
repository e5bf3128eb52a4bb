"""Any change to a proof, its position, its tree size or its root must fail verification.

The one exception is inherent to RFC 6962: a root does not commit to the tree's size, so a size
whose tree gives the proof the same shape verifies too. The size tests check exactly that rule
(the shape comes from the literal RFC recursion in reference.py); it is why the ledger must anchor
each root together with its size.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.integrity.merkle import (
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

from .reference import path_shape, proof_shape

MAX_LEAVES = 70
_TREE = MerkleTree(leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES))
hashes = st.binary(min_size=32, max_size=32)


@dataclass(frozen=True)
class Inclusion:
    leaf: bytes
    index: int
    size: int
    proof: list[bytes]
    root: bytes


@dataclass(frozen=True)
class Consistency:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


@st.composite
def inclusions(draw: st.DrawFn, min_size: int = 1) -> Inclusion:
    size = draw(st.integers(min_size, MAX_LEAVES))
    index = draw(st.integers(0, size - 1))
    leaf = leaf_hash(index.to_bytes(4, "big"))
    return Inclusion(leaf, index, size, _TREE.inclusion_proof(index, size), _TREE.root(size))


@st.composite
def consistencies(draw: st.DrawFn) -> Consistency:
    new = draw(st.integers(2, MAX_LEAVES))
    old = draw(st.integers(1, new - 1))
    proof = _TREE.consistency_proof(old, new)
    return Consistency(old, new, _TREE.root(old), _TREE.root(new), proof)


def _check_inclusion(c: Inclusion) -> None:
    verify_inclusion(c.leaf, c.index, c.size, c.proof, c.root)


def _check_consistency(c: Consistency) -> None:
    verify_consistency(c.old_size, c.new_size, c.old_root, c.new_root, c.proof)


def _flip(data: bytes, position: int, mask: int) -> bytes:
    altered = bytearray(data)
    altered[position % len(altered)] ^= mask
    return bytes(altered)


@given(inclusions())
def test_honest_inclusion_proofs_verify(c: Inclusion) -> None:
    _check_inclusion(c)


@given(consistencies())
def test_honest_consistency_proofs_verify(c: Consistency) -> None:
    _check_consistency(c)


@given(inclusions(min_size=2), st.data(), st.integers(0, 31), st.integers(1, 255))
def test_altered_inclusion_element_fails(
    c: Inclusion, data: st.DataObject, position: int, mask: int
) -> None:
    at = data.draw(st.integers(0, len(c.proof) - 1))
    proof = [*c.proof]
    proof[at] = _flip(proof[at], position, mask)
    with pytest.raises(IntegrityError):
        verify_inclusion(c.leaf, c.index, c.size, proof, c.root)


@given(inclusions(min_size=2), st.data())
def test_wrong_index_fails(c: Inclusion, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, c.size - 1).filter(lambda i: i != c.index))
    with pytest.raises(IntegrityError):
        verify_inclusion(c.leaf, index, c.size, c.proof, c.root)


@given(inclusions(), st.data())
def test_wrong_size_fails_unless_the_tree_shape_is_the_same(
    c: Inclusion, data: st.DataObject
) -> None:
    """A root does not commit to its size: where two sizes give a leaf the same path, the same
    proof is honest for both, so the size must be anchored next to the root."""
    size = data.draw(st.integers(c.index + 1, 2 * MAX_LEAVES).filter(lambda s: s != c.size))
    if path_shape(c.index, size) == path_shape(c.index, c.size):
        verify_inclusion(c.leaf, c.index, size, c.proof, c.root)
    else:
        with pytest.raises(IntegrityError):
            verify_inclusion(c.leaf, c.index, size, c.proof, c.root)


@given(inclusions(), hashes)
def test_wrong_root_or_leaf_fails(c: Inclusion, other: bytes) -> None:
    if other != c.root:
        with pytest.raises(IntegrityError):
            verify_inclusion(c.leaf, c.index, c.size, c.proof, other)
    if other != c.leaf:
        with pytest.raises(IntegrityError):
            verify_inclusion(other, c.index, c.size, c.proof, c.root)


@given(inclusions(), st.data())
def test_truncated_or_extended_inclusion_fails(c: Inclusion, data: st.DataObject) -> None:
    extra = data.draw(st.lists(hashes, min_size=1, max_size=3))
    where = data.draw(st.integers(0, len(c.proof)))
    with pytest.raises(IntegrityError):
        verify_inclusion(
            c.leaf, c.index, c.size, [*c.proof[:where], *extra, *c.proof[where:]], c.root
        )
    if c.proof:
        keep = data.draw(st.integers(0, len(c.proof) - 1))
        with pytest.raises(IntegrityError):
            verify_inclusion(c.leaf, c.index, c.size, c.proof[:keep], c.root)


@given(inclusions(min_size=2), st.data())
def test_malformed_inclusion_element_fails(c: Inclusion, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(c.proof) - 1))
    cut = data.draw(st.integers(0, 64).filter(lambda n: n != 32))
    proof = [*c.proof]
    proof[at] = (proof[at] * 2)[:cut]
    with pytest.raises(IntegrityError):
        verify_inclusion(c.leaf, c.index, c.size, proof, c.root)


@given(consistencies(), st.data(), st.integers(0, 31), st.integers(1, 255))
def test_altered_consistency_element_fails(
    c: Consistency, data: st.DataObject, position: int, mask: int
) -> None:
    at = data.draw(st.integers(0, len(c.proof) - 1))
    proof = [*c.proof]
    proof[at] = _flip(proof[at], position, mask)
    with pytest.raises(IntegrityError):
        verify_consistency(c.old_size, c.new_size, c.old_root, c.new_root, proof)


@given(consistencies(), st.data())
def test_wrong_sizes_fail_unless_the_tree_shape_is_the_same(
    c: Consistency, data: st.DataObject
) -> None:
    old = data.draw(st.integers(1, c.new_size).filter(lambda s: s != c.old_size))
    new = data.draw(st.integers(c.old_size, 2 * MAX_LEAVES).filter(lambda s: s != c.new_size))
    honest = proof_shape(c.old_size, c.new_size)
    for claimed_old, claimed_new in ((old, c.new_size), (c.old_size, new)):
        if proof_shape(claimed_old, claimed_new) == honest:
            verify_consistency(claimed_old, claimed_new, c.old_root, c.new_root, c.proof)
        else:
            with pytest.raises(IntegrityError):
                verify_consistency(claimed_old, claimed_new, c.old_root, c.new_root, c.proof)


@given(consistencies(), hashes)
def test_wrong_roots_fail(c: Consistency, other: bytes) -> None:
    if other != c.old_root:
        with pytest.raises(IntegrityError):
            verify_consistency(c.old_size, c.new_size, other, c.new_root, c.proof)
    if other != c.new_root:
        with pytest.raises(IntegrityError):
            verify_consistency(c.old_size, c.new_size, c.old_root, other, c.proof)


@given(consistencies(), st.data())
def test_truncated_or_extended_consistency_fails(c: Consistency, data: st.DataObject) -> None:
    extra = data.draw(st.lists(hashes, min_size=1, max_size=3))
    where = data.draw(st.integers(0, len(c.proof)))
    extended = [*c.proof[:where], *extra, *c.proof[where:]]
    with pytest.raises(IntegrityError):
        verify_consistency(c.old_size, c.new_size, c.old_root, c.new_root, extended)
    keep = data.draw(st.integers(0, len(c.proof) - 1))
    with pytest.raises(IntegrityError):
        verify_consistency(c.old_size, c.new_size, c.old_root, c.new_root, c.proof[:keep])


@settings(max_examples=300)
@given(
    st.integers(-3, 2 * MAX_LEAVES),
    st.integers(-3, 2 * MAX_LEAVES),
    st.lists(hashes, max_size=9),
    hashes,
    hashes,
)
def test_arbitrary_input_raises_only_verification_errors(
    a: int, b: int, proof: list[bytes], h1: bytes, h2: bytes
) -> None:
    """Garbage from an untrusted receipt must never escape as IndexError or the like."""
    with contextlib.suppress(IntegrityError, InvalidInput):
        verify_inclusion(h1, a, b, proof, h2)
    with contextlib.suppress(IntegrityError, InvalidInput):
        verify_consistency(a, b, h1, h2, proof)
