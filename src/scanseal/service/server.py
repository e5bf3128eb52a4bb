"""Assembling and running a gateway from configuration (what ``scanseal serve`` does)."""

from __future__ import annotations

import errno
import gc
import os
import socket
import ssl
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from scanseal._disk import disk_error
from scanseal.config import resolve
from scanseal.crypto.identity import Keystore
from scanseal.errors import GatewayUnavailable, InvalidInput, ScanSealError
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway
from scanseal.service.state import GatewayState
from scanseal.storage import StorageConfig, load_config, open_store

if TYPE_CHECKING:
    from scanseal.dicom.agent import ForwardAgent, ForwardConfig
    from scanseal.dicom.config import DicomConfig
    from scanseal.dicom.scp import Receiver, StorageSCP
    from scanseal.service.app import Mount

_GC_YOUNG_THRESHOLD: Final = 50_000
_UVICORN_STARTUP_FAILURE: Final = 3  # uvicorn's sys.exit code when it cannot listen


@dataclass(frozen=True)
class ServerConfig:
    """Every section ``scanseal serve`` runs on, from one configuration file read once."""

    gateway: GatewayConfig
    ledger: LedgerConfig
    storage: StorageConfig
    dicom: DicomConfig
    forward: ForwardConfig | None

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> ServerConfig:
        """The file :func:`scanseal.config.resolve` chooses (``path``, ``$SCANSEAL_CONFIG``, the
        home's scanseal.toml), each section with its environment overrides."""
        from scanseal.dicom.agent import ForwardConfig
        from scanseal.dicom.config import DicomConfig

        env = os.environ if env is None else env
        config = resolve(path, env)
        forward = (
            ForwardConfig.from_table(config.table("forward")) if config.has("forward") else None
        )
        return cls(
            GatewayConfig.from_table(config.table("gateway"), env),
            LedgerConfig.from_table(config.table("ledger"), env),
            load_config(env=env, resolved=config),
            DicomConfig.from_table(config.table("dicom")),
            forward,
        )


def _settings(config: ServerConfig | Path | None) -> ServerConfig:
    return config if isinstance(config, ServerConfig) else ServerConfig.load(config)


def check_startup(settings: ServerConfig | Path | None) -> None:
    """What ``serve`` can check before the identity is unlocked and chain and state are opened.

    The TLS certificate and key load as a pair, and the HTTP port and (with ``[dicom]
    enabled``) the DICOM port can be bound. A port in use is GatewayUnavailable (exit 5: it
    is taken, most likely by a gateway already running); everything else is a bad setting,
    InvalidInput (exit 2). Each names the file or the address.
    """
    settings = _settings(settings)
    config, dicom = settings.gateway, settings.dicom
    if config.tls_cert is not None and config.tls_key is not None:
        _check_tls(config.tls_cert, config.tls_key)
    _check_port(config.host, config.port, "HTTP")
    if dicom.enabled:
        _check_port(dicom.host, dicom.port, "DICOM")


def _check_tls(cert: Path, key: Path) -> None:
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if not path.is_file():
            raise InvalidInput(f"gateway: {name} {path} is not a file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        reason = error.reason or error.strerror or "unreadable"
        raise InvalidInput(
            f"gateway: tls_cert {cert} and tls_key {key} are not a usable pair ({reason})"
        ) from None
    except OSError as error:
        raise disk_error(error, cert) from None


def _check_port(host: str, port: int, what: str) -> None:
    """Bind (then release) every address ``host`` resolves to, as the server will."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InvalidInput(f"{what} host {host!r} does not resolve ({error.strerror})") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                raise _listen_error(host, port, what, error) from None


def _listen_error(host: str, port: int, what: str, error: OSError) -> ScanSealError:
    where = f"cannot listen on {host}:{port} ({what})"
    if error.errno == errno.EADDRINUSE:
        return GatewayUnavailable(f"{where}: the port is in use (is a gateway running already?)")
    return InvalidInput(f"{where}: {error.strerror or error}")


def open_gateway(settings: ServerConfig | Path | None, passphrase: str) -> Gateway:
    """Unlock the gateway identity, open ledger, store and state, and bootstrap its roles.

    On a fresh embedded chain the gateway deploys the ImageRegistry and so becomes its owner.
    """
    settings = _settings(settings)
    config, ledger_config = settings.gateway, settings.ledger
    identity = Keystore().load(config.identity, passphrase)
    operator = identity.account if ledger_config.mode == "batched" else None
    ledger = Ledger.open(ledger_config, operator=operator, deployer=identity.account)
    try:
        store = open_store(settings.storage)
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
    gateway: Gateway, settings: ServerConfig | Path | None = None, agent: ForwardAgent | None = None
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM), then anchor what is pending and close.

    With ``[dicom] enabled`` the Storage SCP runs beside the REST API on the same gateway; an
    ``agent`` ([forward]) forwards records granted to its identity into a PACS meanwhile.
    """
    dicom = _settings(settings).dicom
    config = gateway.config
    gateway.start()  # the grant-table mirror catches up while the listeners come up
    url = f"{config.scheme}://{config.host}:{config.port}"
    print(f"scanseal gateway {gateway.identity.address} listening on {url}", flush=True)
    scp = _start_scp(gateway, dicom) if dicom.enabled else None
    sys.stdout.flush()
    _tune_collector()
    stop = threading.Event()
    forwarding = _start_forwarding(agent, stop)
    try:
        _run_http(gateway, _stow_mounts(scp.receiver) if scp and dicom.stow else [])
    finally:
        stop.set()
        forwarding.join(timeout=60)  # a pass in flight ends after its current record
        if agent is not None:
            agent.close()
        if scp is not None:
            scp.stop()
            scp.receiver.index.close()
        gateway.close()


def _start_scp(gateway: Gateway, dicom: DicomConfig) -> StorageSCP:
    """The Storage SCP over the gateway (as its registrar, sealing as its identity)."""
    from scanseal.dicom.index import DicomIndex
    from scanseal.dicom.scp import Receiver, StorageSCP, log_to_stderr

    index = DicomIndex.at(gateway.config.state_dir)
    try:
        scp = StorageSCP(Receiver(gateway, gateway.identity, dicom, index)).start()
    except OSError as error:  # taken since check_startup looked
        index.close()
        gateway.close()
        raise _listen_error(dicom.host, dicom.port, "DICOM", error) from None
    print(f"DICOM Storage SCP {dicom.ae_title} on {dicom.host}:{scp.port}", flush=True)
    log_to_stderr()  # one line per received instance, with the tamper screen's verdict
    return scp


def _tune_collector() -> None:
    """Everything loaded so far (web3, py-evm, the chain's state) lives as long as the process:
    leaving it out of the collector's full passes keeps them from growing with the imports. A
    fetch allocates a few thousand short-lived objects, which reference counting frees anyway,
    so the young generation's threshold is raised far above the default 700 that would run
    several passes per fetch (docs/PROTOCOL.md §9.5)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, 20, 20)


def _start_forwarding(agent: ForwardAgent | None, stop: threading.Event) -> threading.Thread:
    forwarding = threading.Thread(target=lambda: None)
    if agent is not None:
        from scanseal.dicom.agent import log_to_stderr

        log_to_stderr()
        forwarding = threading.Thread(target=agent.run, args=(stop,), name="forward", daemon=True)
    forwarding.start()
    return forwarding


def _run_http(gateway: Gateway, mounts: list[Mount]) -> None:
    import uvicorn

    from scanseal.service.app import BoundedHttp, create_app

    config = gateway.config
    try:
        uvicorn.run(
            create_app(gateway, mounts),
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            log_level="warning",
            access_log=False,
            http=BoundedHttp,
        )
    except SystemExit as exited:
        if exited.code != _UVICORN_STARTUP_FAILURE:
            raise
        raise GatewayUnavailable(  # uvicorn exits 3, which ScanSeal reserves for integrity
            f"cannot listen on {config.host}:{config.port} (HTTP): the server did not start"
        ) from None


def _stow_mounts(receiver: Receiver) -> list[Mount]:
    """STOW-RS on the gateway's app, over the same receiver as the Storage SCP."""
    from scanseal.dicom.stow import add_routes

    return [lambda app, run, body: add_routes(app, receiver, run, body)]
