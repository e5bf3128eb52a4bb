"""The fast tree against published CT vectors, the committed vector file and the literal RFC."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.integrity.merkle import (
    MerkleTree,
    empty_root,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

from .reference import CT_LEAVES, mth, path, proof
from .write_vectors import MERKLE_FILE, merkle_vectors, render

# Roots and proofs as published with Certificate Transparency's reference implementation.
PUBLISHED_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
PUBLISHED_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
PUBLISHED_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


@pytest.fixture(scope="module")
def ct_tree() -> MerkleTree:
    tree = MerkleTree()
    for data in CT_LEAVES:
        tree.append(data)
    return tree


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(MERKLE_FILE.read_text(encoding="utf-8"))
    return result


def test_committed_vector_file_matches_reference() -> None:
    assert MERKLE_FILE.read_text(encoding="utf-8") == render(merkle_vectors())


def test_reference_matches_published_vectors(vectors: dict[str, Any]) -> None:
    assert [r["root"] for r in vectors["roots"][1:]] == PUBLISHED_ROOTS
    for index, size, expected in PUBLISHED_INCLUSION:
        assert _hex(path(index, CT_LEAVES[:size])) == expected
    for old, new, expected in PUBLISHED_CONSISTENCY:
        assert _hex(proof(old, CT_LEAVES[:new])) == expected


def test_primitives() -> None:
    assert empty_root().hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == PUBLISHED_ROOTS[0]
    assert node_hash(leaf_hash(b""), leaf_hash(b"\x00")).hex() == PUBLISHED_ROOTS[1]


def test_roots_from_vector_file(ct_tree: MerkleTree, vectors: dict[str, Any]) -> None:
    assert [leaf_hash(bytes.fromhex(x)).hex() for x in vectors["leaves"]] == vectors["leaf_hashes"]
    for entry in vectors["roots"]:
        assert ct_tree.root(entry["size"]).hex() == entry["root"]


def test_inclusion_from_vector_file(ct_tree: MerkleTree, vectors: dict[str, Any]) -> None:
    for entry in vectors["inclusion"]:
        index, size = entry["index"], entry["size"]
        got = ct_tree.inclusion_proof(index, size)
        assert _hex(got) == entry["proof"]
        leaf = bytes.fromhex(vectors["leaf_hashes"][index])
        verify_inclusion(leaf, index, size, got, ct_tree.root(size))


def test_consistency_from_vector_file(ct_tree: MerkleTree, vectors: dict[str, Any]) -> None:
    for entry in vectors["consistency"]:
        old, new = entry["old_size"], entry["new_size"]
        got = ct_tree.consistency_proof(old, new)
        assert _hex(got) == entry["proof"]
        verify_consistency(old, new, ct_tree.root(old), ct_tree.root(new), got)


def test_every_pair_up_to_40_leaves_matches_the_rfc() -> None:
    data = [i.to_bytes(2, "big") * (i % 3) for i in range(40)]
    tree = MerkleTree()
    for size in range(1, 41):
        tree.append(data[size - 1])
        root = mth(data[:size])
        assert tree.root() == root
        for index in range(size):
            expected = path(index, data[:size])
            assert tree.inclusion_proof(index) == expected
            verify_inclusion(leaf_hash(data[index]), index, size, expected, root)
    for new in range(1, 41):
        for old in range(new + 1):
            expected = proof(old, data[:new])
            assert tree.consistency_proof(old, new) == expected
            verify_consistency(old, new, mth(data[:old]), mth(data[:new]), expected)


def test_constructor_takes_leaf_hashes(ct_tree: MerkleTree) -> None:
    rebuilt = MerkleTree(leaf_hash(d) for d in CT_LEAVES)
    assert rebuilt.size == 8
    assert rebuilt.root() == ct_tree.root()
    assert rebuilt.append_leaf_hash(leaf_hash(b"x")) == 8
    assert rebuilt.append(b"y") == 9


def test_empty_tree() -> None:
    tree = MerkleTree()
    assert tree.size == 0
    assert tree.root() == empty_root()
    assert tree.consistency_proof(0) == []
    verify_consistency(0, 0, empty_root(), empty_root(), [])


def test_empty_tree_is_prefix_of_any_tree(ct_tree: MerkleTree) -> None:
    assert ct_tree.consistency_proof(0, 5) == []
    verify_consistency(0, 5, empty_root(), ct_tree.root(5), [])
    with pytest.raises(IntegrityError):
        verify_consistency(0, 5, ct_tree.root(1), ct_tree.root(5), [])
    with pytest.raises(IntegrityError):
        verify_consistency(0, 5, empty_root(), ct_tree.root(5), [ct_tree.root(1)])


def test_same_size_needs_same_root(ct_tree: MerkleTree) -> None:
    verify_consistency(4, 4, ct_tree.root(4), ct_tree.root(4), [])
    with pytest.raises(IntegrityError):
        verify_consistency(4, 4, ct_tree.root(4), ct_tree.root(5), [])
    with pytest.raises(IntegrityError):
        verify_consistency(4, 4, ct_tree.root(4), ct_tree.root(4), [ct_tree.root(4)])


def test_nonempty_consistency_needs_a_proof(ct_tree: MerkleTree) -> None:
    with pytest.raises(IntegrityError):
        verify_consistency(4, 8, ct_tree.root(4), ct_tree.root(8), [])


@pytest.mark.parametrize(
    ("index", "size"), [(8, None), (-1, None), (3, 3), (0, 0), (0, 9), (0, -1)]
)
def test_bad_inclusion_arguments(ct_tree: MerkleTree, index: int, size: int | None) -> None:
    with pytest.raises(InvalidInput):
        ct_tree.inclusion_proof(index, size)


@pytest.mark.parametrize(("old", "new"), [(5, 4), (-1, 4), (0, 9), (9, None)])
def test_bad_consistency_arguments(ct_tree: MerkleTree, old: int, new: int | None) -> None:
    with pytest.raises(InvalidInput):
        ct_tree.consistency_proof(old, new)


@pytest.mark.parametrize("size", [-1, 9])
def test_bad_root_size(ct_tree: MerkleTree, size: int) -> None:
    with pytest.raises(InvalidInput):
        ct_tree.root(size)


def test_bad_verify_arguments(ct_tree: MerkleTree) -> None:
    leaf, root = leaf_hash(b""), ct_tree.root(8)
    with pytest.raises(InvalidInput):
        verify_inclusion(leaf, 8, 8, [], root)
    with pytest.raises(InvalidInput):
        verify_inclusion(leaf, 0, 0, [], root)
    with pytest.raises(InvalidInput):
        verify_inclusion(leaf[:31], 0, 8, [], root)
    with pytest.raises(InvalidInput):
        verify_inclusion(leaf, 0, 8, [], root + b"\x00")
    with pytest.raises(InvalidInput):
        verify_consistency(5, 4, root, root, [])
    with pytest.raises(InvalidInput):
        verify_consistency(-1, 4, root, root, [])


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_append_rejects_malformed_leaf_hash(bad: bytes) -> None:
    tree = MerkleTree()
    with pytest.raises(InvalidInput):
        tree.append_leaf_hash(bad)
    with pytest.raises(InvalidInput):
        MerkleTree([bad])
    assert tree.size == 0


def test_historic_state_survives_appends(ct_tree: MerkleTree) -> None:
    tree = MerkleTree(leaf_hash(d) for d in CT_LEAVES[:3])
    before = (tree.root(), tree.inclusion_proof(1))
    for data in CT_LEAVES[3:]:
        tree.append(data)
    assert (tree.root(3), tree.inclusion_proof(1, 3)) == before
    assert tree.root() == ct_tree.root()


DOC_INCLUSION = [(2, 3), (1, 5), (6, 7), (0, 8), (5, 8)]
DOC_CONSISTENCY = [(2, 5), (3, 7), (4, 8), (1, 8), (6, 8)]


def test_docs_carry_the_committed_vectors(vectors: dict[str, Any]) -> None:
    doc = (MERKLE_FILE.parents[2] / "docs" / "INTEGRITY.md").read_text("utf-8")
    for value in [*vectors["leaf_hashes"], *(r["root"] for r in vectors["roots"])]:
        assert value in doc
    inclusion = {(e["index"], e["size"]): e["proof"] for e in vectors["inclusion"]}
    consistency = {(e["old_size"], e["new_size"]): e["proof"] for e in vectors["consistency"]}
    listed = [inclusion[k] for k in DOC_INCLUSION] + [consistency[k] for k in DOC_CONSISTENCY]
    for proof_hex in listed:
        assert ",\n  ".join(f"`{h}`" for h in proof_hex) in doc
