"""Signed gateway requests: EIP-712 typed data, so any Ethereum wallet can sign one.

A request names the action, the record (manifest CID), the requester's address, the gateway it is
meant for, a random 32-byte nonce, when it was issued and when it expires, and the SHA-256 of
the request body. The domain binds the chain id and the ImageRegistry address, so a request for
one deployment or one gateway is worthless at another; the body hash means a man in the middle
cannot swap what is uploaded under a valid signature. docs/PROTOCOL.md §2 is the normative text.

The client and the gateway hash a request with the same EIP-712 encoder
(``scanseal.crypto.typed_data``) and sign or recover it with the same signature code
(``scanseal.crypto.signing``); this module only names the request's fields and the words of its
refusals.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Final

from scanseal._address import is_checksummed
from scanseal._json import Reader, canonical_json, parse_object
from scanseal.crypto import typed_data
from scanseal.crypto.signing import (
    Refusals,
    Signer,
    decode_signature,
    recover_address,
    sign_digest,
)
from scanseal.errors import InvalidInput

REQUEST_HEADER: Final = "X-ScanSeal-Request"
SIGNATURE_HEADER: Final = "X-ScanSeal-Signature"
ACTIONS: Final = ("upload", "fetch", "grant", "revoke", "audit", "inbox", "study")
DEFAULT_LIFETIME: Final = 60
_WHAT: Final = "signed request"
MAX_REQUEST_HEADER: Final = 4096
"""Longest X-ScanSeal-Request accepted (characters). A request's JSON is about 350 bytes; its
base64 about 480."""
_BASE64URL: Final = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_REFUSALS: Final = Refusals(
    malformed=f"{SIGNATURE_HEADER} must be 0x and 130 hex digits",
    out_of_range="request signature is not in canonical form",
    recovery_byte="request signature is not in canonical form",
    no_key="request signature does not recover to any key",
)

REQUEST_TYPE: Final = typed_data.StructType(
    "Request",
    (("action", "string"), ("record", "string"), ("requester", "address"),
     ("gateway", "address"), ("nonce", "bytes32"), ("issuedAt", "uint64"),
     ("expiresAt", "uint64"), ("bodyHash", "bytes32")),
)  # fmt: skip
"""The EIP-712 struct a request is signed as (docs/PROTOCOL.md §2); the domain is
``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``."""


@dataclass(frozen=True)
class Domain:
    """Which deployment a request is for: chain, ImageRegistry contract, and gateway account."""

    chain_id: int
    contract: str
    gateway: str

    def as_typed(self) -> dict[str, Any]:
        """The EIP-712 domain values (name ScanSeal, version 1)."""
        return {
            "name": "ScanSeal",
            "version": "1",
            "chainId": self.chain_id,
            "verifyingContract": self.contract,
        }


@dataclass(frozen=True)
class Request:
    """The signed fields of one request."""

    action: str
    record: str
    requester: str
    gateway: str
    nonce: bytes
    issued_at: int
    expires_at: int
    body_hash: bytes

    def as_typed(self) -> dict[str, Any]:
        """The EIP-712 message values, by the field names of ``REQUEST_TYPE``."""
        return {
            "action": self.action,
            "record": self.record,
            "requester": self.requester,
            "gateway": self.gateway,
            "nonce": self.nonce,
            "issuedAt": self.issued_at,
            "expiresAt": self.expires_at,
            "bodyHash": self.body_hash,
        }

    def to_json(self) -> bytes:
        return canonical_json(
            {
                "action": self.action,
                "record": self.record,
                "requester": self.requester,
                "gateway": self.gateway,
                "nonce": self.nonce.hex(),
                "issued_at": self.issued_at,
                "expires_at": self.expires_at,
                "body_hash": self.body_hash.hex(),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Request:
        top = Reader(parse_object(raw, _WHAT), _WHAT)
        top.only(
            "action", "record", "requester", "gateway", "nonce", "issued_at", "expires_at",
            "body_hash",
        )  # fmt: skip
        for key in ("requester", "gateway"):
            if not is_checksummed(top.text(key)):
                top.fail(key, "must be an EIP-55 checksummed address")
        request = cls(
            action=top.text("action"),
            record=top.text("record"),
            requester=top.text("requester"),
            gateway=top.text("gateway"),
            nonce=_hex32(top, "nonce"),
            issued_at=top.integer("issued_at"),
            expires_at=top.integer("expires_at"),
            body_hash=_hex32(top, "body_hash"),
        )
        if request.action not in ACTIONS:
            top.fail("action", f"must be one of {', '.join(ACTIONS)}")
        if not 0 <= request.issued_at < 2**64 or not 0 <= request.expires_at < 2**64:
            top.fail("issued_at", "times must be unsigned 64-bit seconds")
        return request


def typed_digest(domain: Domain, request: Request) -> bytes:
    """The EIP-712 digest a wallet signs for ``request`` under ``domain``.

    The same 32 bytes as eth_account's ``encode_typed_data`` then ``_hash_eip191_message``
    (tests compare the two); both signing and recovery use it.
    """
    return typed_data.typed_digest(_separator(domain), REQUEST_TYPE.hash_struct(request.as_typed()))


@functools.lru_cache(maxsize=16)
def _separator(domain: Domain) -> bytes:
    """The domain separator: one per gateway, so computed once."""
    return typed_data.EIP712_DOMAIN.hash_struct(domain.as_typed())


def _hex32(reader: Reader, key: str) -> bytes:
    value = reader.text(key)
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        reader.fail(key, "must be 64 lowercase hex digits")
    return bytes.fromhex(value)


def new_request(
    account: Signer,
    domain: Domain,
    action: str,
    record: str,
    *,
    body: bytes = b"",
    lifetime: int = DEFAULT_LIFETIME,
    now: int | None = None,
) -> Request:
    """A fresh request (random nonce, valid for ``lifetime`` seconds from now)."""
    issued = int(time.time()) if now is None else now
    return Request(
        action=action,
        record=record,
        requester=account.address,
        gateway=domain.gateway,
        nonce=os.urandom(32),
        issued_at=issued,
        expires_at=issued + lifetime,
        body_hash=hashlib.sha256(body).digest(),
    )


def sign_request(account: Signer, domain: Domain, request: Request) -> dict[str, str]:
    """The two HTTP headers that carry a request and its EIP-712 signature."""
    return {
        REQUEST_HEADER: base64.urlsafe_b64encode(request.to_json()).decode("ascii"),
        SIGNATURE_HEADER: sign_digest(account, typed_digest(domain, request)),
    }


def signed_headers(
    account: Signer,
    domain: Domain,
    action: str,
    record: str,
    *,
    body: bytes = b"",
    lifetime: int = DEFAULT_LIFETIME,
) -> dict[str, str]:
    """New request, signed, as headers: what a client attaches to one HTTP call."""
    request = new_request(account, domain, action, record, body=body, lifetime=lifetime)
    return sign_request(account, domain, request)


def parse_request(encoded: str | None) -> Request:
    """Decode the request header; InvalidInput when it is missing or malformed."""
    if not encoded:
        raise InvalidInput(f"missing {REQUEST_HEADER} header")
    if len(encoded) > MAX_REQUEST_HEADER:
        raise InvalidInput(f"{REQUEST_HEADER} is longer than {MAX_REQUEST_HEADER} characters")
    if not _BASE64URL.fullmatch(encoded):
        raise InvalidInput(f"{REQUEST_HEADER} is not padded base64url")
    raw = base64.urlsafe_b64decode(encoded)
    if base64.urlsafe_b64encode(raw).decode("ascii") != encoded:  # non-zero padding bits
        raise InvalidInput(f"{REQUEST_HEADER} is not canonical base64url")
    request = Request.from_json(raw)
    if request.to_json() != raw:
        raise InvalidInput(f"{REQUEST_HEADER} is not canonical JSON")
    return request


def recover_requester(domain: Domain, request: Request, signature: str | None) -> str:
    """The address that signed ``request`` under ``domain``; IntegrityError for a bad signature.

    Only canonical (low-s) signatures are accepted, so one request has exactly one signature.
    """
    raw = decode_signature(signature, _REFUSALS)
    return recover_address(typed_digest(domain, request), raw, _REFUSALS)
