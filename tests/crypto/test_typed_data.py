"""The EIP-712 encoder: equal to eth_account's for any flat struct of the supported types."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from scanseal.crypto.typed_data import EIP712_DOMAIN, StructType, domain_separator, typed_digest

KINDS = ("string", "address", "bytes32", "uint64", "uint256")
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=60),
    "address": st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    "bytes32": st.binary(min_size=32, max_size=32),
    "uint64": st.integers(0, 2**64 - 1),
    "uint256": st.integers(0, 2**256 - 1),
}
NAMES = st.from_regex(r"[a-z][A-Za-z0-9]{0,8}", fullmatch=True)


@st.composite
def structs(draw: st.DrawFn) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    names = draw(st.lists(NAMES, min_size=1, max_size=8, unique=True))
    fields = [(name, draw(st.sampled_from(KINDS))) for name in names]
    return fields, {name: draw(VALUES[kind]) for name, kind in fields}


@settings(max_examples=150, deadline=None)
@given(
    struct=structs(),
    domain=st.tuples(st.text(max_size=20), st.text(max_size=8), VALUES["uint256"],
                     VALUES["address"]),
)  # fmt: skip
def test_digest_equals_eth_account(
    struct: tuple[list[tuple[str, str]], dict[str, Any]], domain: tuple[str, str, int, str]
) -> None:
    fields, values = struct
    name, version, chain_id, contract = domain
    separator = domain_separator(name, version, chain_id, contract)
    ours = typed_digest(separator, StructType("Thing", tuple(fields)).hash_struct(values))
    full = {
        "types": {
            "EIP712Domain": [{"name": n, "type": k} for n, k in EIP712_DOMAIN.fields],
            "Thing": [{"name": n, "type": k} for n, k in fields],
        },
        "primaryType": "Thing",
        "domain": {"name": name, "version": version, "chainId": chain_id,
                   "verifyingContract": contract},
        "message": values,
    }  # fmt: skip
    assert ours == _hash_eip191_message(encode_typed_data(full_message=full))


def test_domain_type_hash() -> None:
    """keccak256("EIP712Domain(string name,string version,uint256 chainId,address
    verifyingContract)"), the value printed in EIP-712's examples."""
    assert EIP712_DOMAIN.type_hash.hex() == (
        "8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f"
    )


def test_unsupported_field_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        StructType("Thing", (("a", "bytes"),))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("string", b"bytes"),
        ("address", "0x" + "00" * 19),
        ("address", "0x" + "0" * 39 + "g"),
        ("address", "0x" + "00" * 19 + " 0"),  # fromhex would skip the space
        ("address", "00" * 21),
        ("bytes32", b"\x00" * 31),
        ("bytes32", "00" * 32),
        ("uint64", 2**64),
        ("uint64", -1),
        ("uint256", 2**256),
        ("uint256", True),
        ("uint256", "1"),
    ],
)
def test_values_that_do_not_fit_are_refused(kind: str, value: object) -> None:
    with pytest.raises(ValueError, match=kind):
        StructType("Thing", (("a", kind),)).hash_struct({"a": value})
