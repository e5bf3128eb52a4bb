"""The department gateway: a FastAPI service over the ledger and the block store.

``open_gateway`` and ``serve`` (``scanseal.service.server``) run one from configuration;
``scanseal.client`` is the client side and docs/PROTOCOL.md the protocol.
"""

from __future__ import annotations

from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway

__all__ = ["Gateway", "GatewayConfig"]
