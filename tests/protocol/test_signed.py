"""Signed requests and gateway configuration, without a server."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message
from hypothesis import given, settings
from hypothesis import strategies as st

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.protocol.signed import (
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    Domain,
    Request,
    _signable,
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
    signable = _signable(domain, request)
    assert typed_digest(domain, request) == _hash_eip191_message(signable)
    signature = sign_request(ALICE, domain, request)[SIGNATURE_HEADER]
    assert recover_requester(domain, request, signature) == ALICE.address
    assert Account.recover_message(signable, signature=signature) == ALICE.address
    other = dataclasses.replace(request, record=record + "x")
    assert recover_requester(domain, other, signature) != ALICE.address
