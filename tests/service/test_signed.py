"""Signed requests and gateway configuration, without a server."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from eth_account import Account

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.service.config import GatewayConfig
from scanseal.service.signed import (
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    Domain,
    Request,
    new_request,
    parse_request,
    recover_requester,
    sign_request,
)

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
