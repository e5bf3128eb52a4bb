"""``scanseal._address`` spells and recognises addresses exactly as eth-utils does (EIP-55),
without importing it: random addresses, every case mix, and the malformed forms."""

from __future__ import annotations

import os
import random

import pytest
from eth_utils.address import is_address as eth_is_address
from eth_utils.address import is_checksum_address, to_checksum_address

from scanseal._address import checksum, is_address, is_checksummed

EIP55_EXAMPLES = (  # the examples the EIP itself lists
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)


@pytest.mark.parametrize("spelled", EIP55_EXAMPLES)
def test_the_eip_examples_are_spelled_as_the_eip_spells_them(spelled: str) -> None:
    assert checksum(spelled.lower()) == spelled
    assert checksum(bytes.fromhex(spelled[2:])) == spelled
    assert is_checksummed(spelled)
    assert not is_checksummed(spelled.lower()) or spelled.lower() == spelled


def test_random_addresses_in_every_spelling_agree_with_eth_utils() -> None:
    rng = random.Random(55)
    for _ in range(300):
        raw = os.urandom(20)
        spelled = to_checksum_address(raw)
        assert checksum(raw) == checksum(spelled.lower()) == spelled
        mixed = "0x" + "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in raw.hex())
        variants = [spelled, spelled.lower(), "0x" + raw.hex().upper(), mixed, raw.hex(),
                    spelled[2:], "0X" + spelled[2:], "0X" + raw.hex(), spelled + "0",
                    spelled[:-1], "0x" + raw.hex()[:-1] + "g", raw, raw[:19], ""]  # fmt: skip
        for variant in variants:
            assert is_address(variant) == eth_is_address(variant), variant
            if isinstance(variant, str):
                assert is_checksummed(variant) == is_checksum_address(variant), variant


BAD = ["", "0x", "0x123", "0x" + "g" * 40, "0x" + "00" * 21, b"\x00" * 19]


@pytest.mark.parametrize("bad", BAD)
def test_what_is_no_address_is_refused_as_eth_utils_refuses_it(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        to_checksum_address(bad)
    with pytest.raises(ValueError, match="address"):
        checksum(bad)
