"""Uploader signatures: EIP-191 over exact bytes, canonical form only, crisp failures."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from scanseal.crypto.signing import (
    personal_digest,
    recover_signer,
    sign_message,
    verify_signature,
)
from scanseal.errors import IntegrityError, InvalidInput

# Published web3.js example (web3.eth.accounts.sign): an outside check that our bytes are EIP-191.
WEB3JS_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
WEB3JS_SIGNATURE = (
    "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd"
    "6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c"
)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

MESSAGE = b"\x00manifest bytes \xff with NUL and high bytes"


@pytest.fixture(scope="module")
def alice():
    return Account.from_key(b"\x11" * 32)


@pytest.fixture(scope="module")
def bob():
    return Account.from_key(b"\x22" * 32)


def test_matches_published_web3js_vector():
    account = Account.from_key(WEB3JS_KEY)
    assert sign_message(account, b"Some data") == WEB3JS_SIGNATURE
    assert recover_signer(b"Some data", WEB3JS_SIGNATURE) == account.address


def test_round_trip_and_format(alice):
    signature = sign_message(alice, MESSAGE)
    assert signature.startswith("0x")
    assert len(bytes.fromhex(signature[2:])) == 65
    assert recover_signer(MESSAGE, signature) == alice.address
    verify_signature(MESSAGE, signature, alice.address)


def test_deterministic(alice):
    assert sign_message(alice, MESSAGE) == sign_message(alice, MESSAGE)


def test_is_personal_sign_over_the_exact_bytes(alice):
    signature = sign_message(alice, MESSAGE)
    theirs = alice.sign_message(encode_defunct(primitive=MESSAGE)).signature
    assert bytes.fromhex(signature[2:]) == bytes(theirs)


def test_accepts_address_in_any_case(alice):
    signature = sign_message(alice, MESSAGE)
    verify_signature(MESSAGE, signature, alice.address.lower())


def test_wrong_signer(alice, bob):
    signature = sign_message(bob, MESSAGE)
    with pytest.raises(IntegrityError) as caught:
        verify_signature(MESSAGE, signature, alice.address)
    assert caught.value.reason == f"signature is by {bob.address}, expected {alice.address}"


def test_other_message_is_not_covered(alice):
    signature = sign_message(alice, MESSAGE)
    with pytest.raises(IntegrityError):
        verify_signature(MESSAGE + b"!", signature, alice.address)


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_forged_bit_flip(alice, index):
    raw = bytearray.fromhex(sign_message(alice, MESSAGE)[2:])
    raw[index] ^= 0x01
    with pytest.raises(IntegrityError):
        verify_signature(MESSAGE, "0x" + raw.hex(), alice.address)


def test_flipped_recovery_byte(alice):
    raw = bytearray.fromhex(sign_message(alice, MESSAGE)[2:])
    raw[64] = 55 - raw[64]  # 27 <-> 28: recovers some other key
    with pytest.raises(IntegrityError):
        verify_signature(MESSAGE, "0x" + raw.hex(), alice.address)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-2],  # truncated by a byte
        lambda s: s[:66],  # truncated to r
        lambda s: s + "00",  # extended
        lambda s: s[2:],  # no 0x
        lambda s: s[:-1] + "g",  # not hex
        lambda s: "",
        lambda s: " " + s,
        lambda s: s + "\n",
        lambda s: s[:40] + " " + s[41:],  # whitespace that bytes.fromhex would skip
        lambda s: "0X" + s[2:],
    ],
)
def test_malformed_signature(alice, mangle):
    with pytest.raises(IntegrityError, match="malformed signature"):
        recover_signer(MESSAGE, mangle(sign_message(alice, MESSAGE)))


def test_not_a_string():
    with pytest.raises(IntegrityError):
        recover_signer(MESSAGE, b"\x00" * 65)  # type: ignore[arg-type]


def test_high_s_twin_is_refused(alice):
    """The (r, n-s, v^1) twin verifies in plain ECDSA; accepting it would fork card hashes."""
    raw = bytes.fromhex(sign_message(alice, MESSAGE)[2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    assert Account.recover_message(encode_defunct(primitive=MESSAGE), signature=twin) == (
        alice.address
    )
    with pytest.raises(IntegrityError, match="high s"):
        recover_signer(MESSAGE, "0x" + twin.hex())


@pytest.mark.parametrize("v", [0, 1, 29, 37])
def test_non_canonical_v(alice, v):
    raw = bytes.fromhex(sign_message(alice, MESSAGE)[2:])
    with pytest.raises(IntegrityError, match="recovery byte"):
        recover_signer(MESSAGE, "0x" + (raw[:64] + bytes([v])).hex())


def test_zero_signature():
    with pytest.raises(IntegrityError, match="high s"):
        recover_signer(MESSAGE, "0x" + "00" * 64 + "1b")


@pytest.mark.parametrize("r_s", [(0, 1), (SECP256K1_N, 1), (1, 0), (1, SECP256K1_N // 2 + 1)])
def test_r_or_s_out_of_range(r_s):
    raw = r_s[0].to_bytes(32, "big") + r_s[1].to_bytes(32, "big") + b"\x1c"
    with pytest.raises(IntegrityError, match="r or s out of range"):
        recover_signer(MESSAGE, "0x" + raw.hex())


def test_no_key_for_r():
    raw = (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"  # x = 5 is not on the curve
    with pytest.raises(IntegrityError, match=r"^signature does not recover to any key$"):
        recover_signer(MESSAGE, "0x" + raw.hex())


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_equals_eth_account(key, message):
    """Digest, signature and recovery agree with eth_account's personal_sign for any bytes."""
    try:
        account = Account.from_key(key)
    except Exception:  # zero or past the curve order: not a key
        return
    signable = encode_defunct(primitive=message)
    assert personal_digest(message) == _hash_eip191_message(signable)
    signature = sign_message(account, message)
    assert signature == "0x" + bytes(account.sign_message(signable).signature).hex()
    assert recover_signer(message, signature) == account.address
    assert Account.recover_message(signable, signature=signature) == account.address


@pytest.mark.parametrize(
    "address",
    [
        "alice",
        "0x1234",
        "0x" + "AbCdEf" * 6 + "AbCd",
        42,
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c2",
        "2c7536E3605D9C16a7a3D7b1898e529396a65c23",
    ],
)
def test_bad_expected_address(alice, address):
    with pytest.raises(InvalidInput):
        verify_signature(MESSAGE, sign_message(alice, MESSAGE), address)
