"""The department gateway: a FastAPI service over the ledger and the block store.

``GatewayClient`` is the client side; ``open_gateway`` and ``serve`` run one from
configuration; docs/PROTOCOL.md is the protocol.
"""

from __future__ import annotations

from scanseal.service.client import GatewayClient, open_bundle
from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway
from scanseal.service.signed import Domain, Request, sign_request, signed_headers

__all__ = [
    "Domain",
    "Gateway",
    "GatewayClient",
    "GatewayConfig",
    "Request",
    "open_bundle",
    "sign_request",
    "signed_headers",
]
