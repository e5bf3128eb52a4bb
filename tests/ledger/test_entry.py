"""Batched log entries: the direct ABI encoding must be byte for byte eth_abi's."""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi.exceptions import EncodingError
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from scanseal.ledger import Entry

_addresses = st.binary(min_size=20, max_size=20).flatmap(
    lambda raw: st.sampled_from(
        ["0x" + raw.hex(), to_checksum_address(raw), "0x" + raw.hex().upper()]
    )
)
_hash = st.binary(min_size=32, max_size=32)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["record", "access"]),
    record_id=_hash,
    actor=_addresses,
    reporter=_addresses,
    timestamp=st.integers(0, 2**64 - 1),
    cid=st.binary(max_size=130),
    hashes=st.tuples(_hash, _hash, _hash),
    access_type=st.integers(0, 255),
    allowed=st.booleans(),
    reason=st.integers(0, 255),
)
def test_direct_encoding_is_eth_abis(
    kind: str, record_id: bytes, actor: str, reporter: str, timestamp: int, cid: bytes,
    hashes: tuple[bytes, bytes, bytes], access_type: int, allowed: bool, reason: int,
) -> None:  # fmt: skip
    entry = Entry(
        kind, record_id, actor, timestamp, reporter,  # type: ignore[arg-type]
        cid=cid, image_hash=hashes[0], h3=hashes[1], pixel_digest=hashes[2],
        access_type=access_type, allowed=allowed, reason=reason,
    )  # fmt: skip
    assert entry._plain()
    assert entry.encode() == entry._abi_encode()
    if actor == to_checksum_address(actor) and reporter == to_checksum_address(reporter):
        assert Entry.decode(entry.encode()) == entry


GOOD = Entry("access", bytes(32), Account.create().address, 1, Account.create().address)


def _outcome(encode: object) -> object:
    try:
        return encode()  # type: ignore[operator]
    except (EncodingError, TypeError, ValueError) as error:
        return type(error)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"record_id": bytes(31)},
        {"record_id": bytearray(32)},
        {"h3": "00" * 32},
        {"timestamp": 2**64},
        {"timestamp": True},
        {"reason": 256},
        {"access_type": -1},
        {"actor": GOOD.actor.lower().replace("0x", "0X")},
        {"actor": "0x" + GOOD.actor[2:].upper()},
        {"reporter": "0x" + GOOD.reporter[2:].swapcase()},
        {"reporter": GOOD.reporter[:-1]},
        {"cid": "not bytes"},
    ],
)
def test_odd_fields_encode_or_fail_exactly_as_eth_abi(change: dict[str, object]) -> None:
    entry = dataclasses.replace(GOOD, **change)  # type: ignore[arg-type]
    assert _outcome(entry.encode) == _outcome(entry._abi_encode)
