"""Signed requests and gateway configuration, without a server."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.protocol.signed import (
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    Domain,
    Request,
    new_request,
    parse_request,
    recover_requester,
    sign_request,
    typed_digest,
)
from scanseal.service.config import GatewayConfig

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ALICE = Account.create()
DOMAIN = Domain(1337, Account.create().address, Account.create().address)

# docs/PROTOCOL.md §2, written out here so the oracle does not share the encoder's definition.
ORACLE_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Request": [
        {"name": "action", "type": "string"},
        {"name": "record", "type": "string"},
        {"name": "requester", "type": "address"},
        {"name": "gateway", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
        {"name": "issuedAt", "type": "uint64"},
        {"name": "expiresAt", "type": "uint64"},
        {"name": "bodyHash", "type": "bytes32"},
    ],
}

# One request signed by the wire format as first released: the headers must stay these bytes.
VECTOR_KEY = bytes(range(1, 33))
VECTOR_DOMAIN = Domain(
    31337,
    "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "0x17c5185167401eD00cF5F5b2fc97D9BBfDb7D025",
)
VECTOR_REQUEST = Request(
    action="fetch",
    record="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    requester="0x6370eF2f4Db3611D657b90667De398a2Cc2a370C",
    gateway="0x17c5185167401eD00cF5F5b2fc97D9BBfDb7D025",
    nonce=bytes(range(32)),
    issued_at=1795000000,
    expires_at=1795000060,
    body_hash=bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
)
VECTOR_DIGEST = "5e2ae1239905a15c621c352b9327648a9ef8c7c37a7cae30b7234269a614fd74"
VECTOR_HEADER = (
    "eyJhY3Rpb24iOiJmZXRjaCIsImJvZHlfaGFzaCI6ImUzYjBjNDQyOThmYzFjMTQ5YWZiZjRjODk5NmZiOTI0MjdhZTQx"
    "ZTQ2NDliOTM0Y2E0OTU5OTFiNzg1MmI4NTUiLCJleHBpcmVzX2F0IjoxNzk1MDAwMDYwLCJnYXRld2F5IjoiMHgxN2M1"
    "MTg1MTY3NDAxZUQwMGNGNUY1YjJmYzk3RDlCQmZEYjdEMDI1IiwiaXNzdWVkX2F0IjoxNzk1MDAwMDAwLCJub25jZSI6"
    "IjAwMDEwMjAzMDQwNTA2MDcwODA5MGEwYjBjMGQwZTBmMTAxMTEyMTMxNDE1MTYxNzE4MTkxYTFiMWMxZDFlMWYiLCJy"
    "ZWNvcmQiOiJiYWZrcmVpZ2gyYWtpc2NhaWxkY3FhYnN5ZzNkZnI2Y2h1M2ZncHJlZ2l5bXNjazdlN2FxYTRzNTJ6eSIs"
    "InJlcXVlc3RlciI6IjB4NjM3MGVGMmY0RGIzNjExRDY1N2I5MDY2N0RlMzk4YTJDYzJhMzcwQyJ9"
)
VECTOR_SIGNATURE = (
    "0x4ad80aff0a536aae63aac0d579e1faf652004f1954a3d2d7036cd4480f98ed3b"
    "6d07b0faa017281c48efaa052e5de1049309345ec4f937f7600cb547307163381b"
)
MALFORMED = f"^{SIGNATURE_HEADER} must be 0x and 130 hex digits$"
NOT_CANONICAL = "^request signature is not in canonical form$"


def oracle_message(domain: Domain, request: Request) -> dict[str, object]:
    """The typed data as eth_account's encode_typed_data and sign_typed_data take it."""
    return {
        "types": ORACLE_TYPES,
        "primaryType": "Request",
        "domain": domain.as_typed(),
        "message": request.as_typed(),
    }


def signed_pair() -> tuple[Request, bytes]:
    request = new_request(ALICE, DOMAIN, "fetch", "r")
    return request, bytes.fromhex(sign_request(ALICE, DOMAIN, request)[SIGNATURE_HEADER][2:])


def test_round_trip_and_recovery() -> None:
    request = new_request(ALICE, DOMAIN, "fetch", "bafkrei-record")
    headers = sign_request(ALICE, DOMAIN, request)
    parsed = parse_request(headers[REQUEST_HEADER])
    assert parsed == request
    assert recover_requester(DOMAIN, parsed, headers[SIGNATURE_HEADER]) == ALICE.address
    for other in (
        dataclasses.replace(DOMAIN, chain_id=1),
        dataclasses.replace(DOMAIN, contract=Account.create().address),
    ):
        assert recover_requester(other, parsed, headers[SIGNATURE_HEADER]) != ALICE.address
    changed = dataclasses.replace(parsed, record="bafkrei-other")
    assert recover_requester(DOMAIN, changed, headers[SIGNATURE_HEADER]) != ALICE.address


def test_high_s_twin_is_refused() -> None:
    headers = sign_request(ALICE, DOMAIN, new_request(ALICE, DOMAIN, "fetch", "r"))
    raw = bytes.fromhex(headers[SIGNATURE_HEADER][2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (N - s).to_bytes(32, "big") + bytes([raw[64] ^ 1])
    with pytest.raises(IntegrityError, match="canonical"):
        recover_requester(DOMAIN, parse_request(headers[REQUEST_HEADER]), "0x" + twin.hex())


@pytest.mark.parametrize(
    "encoded",
    [
        None,
        "not base64 !",
        base64.urlsafe_b64encode(b'{"action": "fetch"}').decode(),
        base64.urlsafe_b64encode(b"[]").decode(),
    ],
)
def test_malformed_requests_are_invalid_input(encoded: str | None) -> None:
    with pytest.raises(InvalidInput):
        parse_request(encoded)


def test_non_canonical_encoding_is_refused() -> None:
    request = new_request(ALICE, DOMAIN, "fetch", "r")
    spaced = request.to_json().replace(b",", b", ")
    with pytest.raises(InvalidInput, match="canonical"):
        parse_request(base64.urlsafe_b64encode(spaced).decode())
    unknown = dataclasses.replace(request, action="delete").to_json()
    with pytest.raises(InvalidInput, match="action"):
        Request.from_json(unknown)


def test_config_file_and_environment(tmp_path: Path) -> None:
    auditor = Account.create().address
    file = tmp_path / "scanseal.toml"
    file.write_text(f'[gateway]\nport = 9000\nauditors = ["{auditor.lower()}"]\n', "utf-8")
    config = GatewayConfig.load(file, env={"SCANSEAL_GATEWAY_MAX_LIFETIME": "60"})
    assert (config.port, config.max_lifetime, config.auditors) == (9000, 60, (auditor,))
    assert config.scheme == "http"
    with pytest.raises(InvalidInput):
        GatewayConfig.load(file, env={"SCANSEAL_GATEWAY_TLS_CERT": "cert.pem"})
    file.write_text("[gateway]\ncolour = 3\n", "utf-8")
    with pytest.raises(InvalidInput, match="colour"):
        GatewayConfig.load(file, env={})
    file.write_text(f"[gateway]\ntick_seconds = {10**400}\n", "utf-8")  # float() overflows
    with pytest.raises(InvalidInput, match="tick_seconds"):
        GatewayConfig.load(file, env={})
    file.write_bytes(b'[gateway]\nhost = "\xff"\n')
    with pytest.raises(InvalidInput, match="UTF-8"):
        GatewayConfig.load(file, env={})


@settings(max_examples=60, deadline=None)
@given(
    action=st.sampled_from(["upload", "fetch", "grant", "revoke", "audit"]),
    record=st.text(max_size=80),
    chain_id=st.integers(0, 2**256 - 1),
    times=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    nonce=st.binary(min_size=32, max_size=32),
    body=st.binary(max_size=64),
)
def test_direct_digest_and_recovery_equal_eth_accounts(
    action: str, record: str, chain_id: int, times: tuple[int, int], nonce: bytes, body: bytes
) -> None:
    """The gateway's own EIP-712 digest and recovery must agree with the wallet library's."""
    domain = dataclasses.replace(DOMAIN, chain_id=chain_id)
    request = dataclasses.replace(
        new_request(ALICE, domain, action, record, body=body),
        nonce=nonce, issued_at=times[0], expires_at=times[1],
    )  # fmt: skip
    signable = encode_typed_data(full_message=oracle_message(domain, request))
    assert typed_digest(domain, request) == _hash_eip191_message(signable)
    signature = sign_request(ALICE, domain, request)[SIGNATURE_HEADER]
    theirs = ALICE.sign_typed_data(full_message=oracle_message(domain, request)).signature
    assert signature == "0x" + bytes(theirs).hex()  # the same bytes as a wallet's signature
    assert recover_requester(domain, request, signature) == ALICE.address
    assert Account.recover_message(signable, signature=signature) == ALICE.address
    other = dataclasses.replace(request, record=record + "x")
    assert recover_requester(domain, other, signature) != ALICE.address


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), record=st.text(max_size=40))
def test_wallet_signatures_verify(key: bytes, record: str) -> None:
    """A signature made by eth_account's sign_typed_data (any wallet) is accepted as is."""
    try:
        wallet = Account.from_key(key)
    except Exception:  # zero or past the curve order: not a key
        return
    request = new_request(wallet, DOMAIN, "upload", record)
    theirs = wallet.sign_typed_data(full_message=oracle_message(DOMAIN, request)).signature
    assert recover_requester(DOMAIN, request, "0x" + bytes(theirs).hex()) == wallet.address


def test_published_vector_is_unchanged() -> None:
    account = Account.from_key(VECTOR_KEY)
    assert account.address == VECTOR_REQUEST.requester
    assert typed_digest(VECTOR_DOMAIN, VECTOR_REQUEST).hex() == VECTOR_DIGEST
    headers = sign_request(account, VECTOR_DOMAIN, VECTOR_REQUEST)
    assert headers == {REQUEST_HEADER: VECTOR_HEADER, SIGNATURE_HEADER: VECTOR_SIGNATURE}
    assert parse_request(VECTOR_HEADER) == VECTOR_REQUEST
    assert recover_requester(VECTOR_DOMAIN, VECTOR_REQUEST, VECTOR_SIGNATURE) == account.address


@pytest.mark.parametrize("v", [0, 1, 26, 29, 37, 255])
def test_other_recovery_bytes_are_refused(v: int) -> None:
    request, raw = signed_pair()
    with pytest.raises(IntegrityError, match=NOT_CANONICAL):
        recover_requester(DOMAIN, request, "0x" + (raw[:64] + bytes([v])).hex())


@pytest.mark.parametrize(
    "r_s",
    [(0, 1), (N, 1), (2**256 - 1, 1), (1, 0), (1, N // 2 + 1), (1, N)],
)
def test_r_or_s_out_of_range_is_refused(r_s: tuple[int, int]) -> None:
    request, _ = signed_pair()
    raw = r_s[0].to_bytes(32, "big") + r_s[1].to_bytes(32, "big") + b"\x1b"
    with pytest.raises(IntegrityError, match=NOT_CANONICAL):
        recover_requester(DOMAIN, request, "0x" + raw.hex())


def test_no_key_for_r_is_refused() -> None:
    request, _ = signed_pair()
    raw = (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"  # x = 5 is not on the curve
    with pytest.raises(IntegrityError, match=r"^request signature does not recover to any key$"):
        recover_requester(DOMAIN, request, "0x" + raw.hex())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-2],  # a byte short
        lambda s: s + "00",  # a byte long
        lambda s: s[:66],  # r alone
        lambda s: s[2:],  # no 0x
        lambda s: "0X" + s[2:],
        lambda s: s[:-1] + "g",  # not hex
        lambda s: " " + s,
        lambda s: s + "\n",
        lambda s: s[:40] + " " + s[41:],  # whitespace that bytes.fromhex would skip
        lambda s: s[:66] + " " + s[66:-1],
        lambda s: "",
        lambda s: None,
    ],
)
def test_malformed_signatures_are_refused(mangle: object) -> None:
    request, raw = signed_pair()
    with pytest.raises(IntegrityError, match=MALFORMED):
        recover_requester(DOMAIN, request, mangle("0x" + raw.hex()))  # type: ignore[operator]
