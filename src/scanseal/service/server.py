"""Assembling and running a gateway from configuration (what ``scanseal serve`` does)."""

from __future__ import annotations

import sys
from pathlib import Path

from scanseal.crypto.identity import Keystore
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway
from scanseal.service.state import GatewayState
from scanseal.storage import load_config, open_store


def open_gateway(config_path: Path | None, passphrase: str) -> Gateway:
    """Unlock the gateway identity, open ledger, store and state, and bootstrap its roles.

    On a fresh embedded chain the gateway deploys the ImageRegistry and so becomes its owner.
    """
    config = GatewayConfig.load(config_path)
    ledger_config = LedgerConfig.load(config_path)
    identity = Keystore().load(config.identity, passphrase)
    operator = identity.account if ledger_config.mode == "batched" else None
    ledger = Ledger.open(ledger_config, operator=operator, deployer=identity.account)
    try:
        store = open_store(load_config(config_path))
    except BaseException:
        ledger.close()
        raise
    state = GatewayState(config.state_dir / "gateway.sqlite3")
    gateway = Gateway(identity, ledger, store, state, config)
    try:
        gateway.bootstrap()
    except BaseException:
        gateway.close()
        raise
    return gateway


def serve(gateway: Gateway) -> None:
    """Serve until interrupted (SIGINT or SIGTERM), then anchor what is pending and close."""
    import uvicorn

    from scanseal.service.app import create_app

    config = gateway.config
    url = f"{config.scheme}://{config.host}:{config.port}"
    print(f"scanseal gateway {gateway.identity.address} listening on {url}", flush=True)
    sys.stdout.flush()
    try:
        uvicorn.run(
            create_app(gateway),
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            log_level="warning",
            access_log=False,
        )
    finally:
        gateway.close()
