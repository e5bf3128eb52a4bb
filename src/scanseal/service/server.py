"""Assembling and running a gateway from configuration (what ``scanseal serve`` does)."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from scanseal.crypto.identity import Keystore
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway
from scanseal.service.state import GatewayState
from scanseal.storage import load_config, open_store

if TYPE_CHECKING:
    from scanseal.dicom.agent import ForwardAgent

_GC_YOUNG_THRESHOLD: Final = 50_000


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


def serve(
    gateway: Gateway, config_path: Path | None = None, agent: ForwardAgent | None = None
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM), then anchor what is pending and close.

    With ``[dicom] enabled`` the Storage SCP runs beside the REST API on the same gateway; an
    ``agent`` ([forward]) forwards records granted to its identity into a PACS meanwhile.
    """
    import uvicorn

    from scanseal.dicom.config import DicomConfig
    from scanseal.dicom.index import DicomIndex
    from scanseal.dicom.scp import Receiver, StorageSCP
    from scanseal.service.app import BoundedHttp, create_app

    config = gateway.config
    gateway.start()  # the grant-table mirror catches up while the listeners come up
    url = f"{config.scheme}://{config.host}:{config.port}"
    print(f"scanseal gateway {gateway.identity.address} listening on {url}", flush=True)
    dicom = DicomConfig.load(config_path)
    scp = receiver = None
    if dicom.enabled:
        receiver = Receiver(gateway, dicom, DicomIndex.at(config.state_dir))
        scp = StorageSCP(receiver).start()
        print(f"DICOM Storage SCP {dicom.ae_title} on {dicom.host}:{scp.port}", flush=True)
    sys.stdout.flush()
    # Everything loaded so far (web3, py-evm, the chain's state) lives as long as the process:
    # leaving it out of the collector's full passes keeps them from growing with the imports.
    gc.collect()
    gc.freeze()
    # A fetch allocates a few thousand short-lived objects (request, TLS records, ledger entry);
    # at the default threshold (700) the collector ran many times per fetch and took a sixth of
    # the gateway's CPU under load. Reference counting frees nearly all of them anyway.
    gc.set_threshold(_GC_YOUNG_THRESHOLD, 20, 20)
    stop = threading.Event()
    forwarding = threading.Thread(target=lambda: None)
    if agent is not None:
        from scanseal.dicom.agent import log_to_stderr

        log_to_stderr()
        forwarding = threading.Thread(target=agent.run, args=(stop,), name="forward", daemon=True)
    forwarding.start()
    try:
        uvicorn.run(
            create_app(gateway, receiver if dicom.stow else None),
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            log_level="warning",
            access_log=False,
            http=BoundedHttp,
        )
    finally:
        stop.set()
        forwarding.join(timeout=60)  # a pass in flight ends after its current record
        if agent is not None:
            agent.close()
        if scp is not None:
            scp.stop()
            scp.receiver.index.close()
        gateway.close()
