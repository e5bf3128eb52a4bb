"""The gateway wire protocol, shared by the gateway and its clients (docs/PROTOCOL.md).

Two parts: ``signed`` — EIP-712 signed requests (what every call to a gateway carries in its
``X-ScanSeal-Request`` and ``X-ScanSeal-Signature`` headers) — and ``wire`` — the bundle framing of
uploads and fetches. Neither knows HTTP servers or clients: the gateway (``scanseal.service``)
checks requests and frames answers with it, ``scanseal.client`` signs requests and reads answers.
"""

from __future__ import annotations

from scanseal.protocol import signed, wire
from scanseal.protocol.signed import (
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    Domain,
    Request,
    new_request,
    parse_request,
    recover_requester,
    sign_request,
    signed_headers,
)

__all__ = [
    "REQUEST_HEADER",
    "SIGNATURE_HEADER",
    "Domain",
    "Request",
    "new_request",
    "parse_request",
    "recover_requester",
    "sign_request",
    "signed",
    "signed_headers",
    "wire",
]
