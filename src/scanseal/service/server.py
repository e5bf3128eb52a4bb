"""Assembling and running a gateway from configuration (what ``scanseal serve`` does)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from scanseal.config import resolve
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.errors import GatewayUnavailable, InvalidInput, ScanSealError
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.service import logs
from scanseal.service import preflight as checks
from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway
from scanseal.service.state import GatewayState
from scanseal.storage import StorageConfig, load_config, open_store

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from scanseal.dicom.agent import ForwardAgent, ForwardConfig
    from scanseal.dicom.config import DicomConfig
    from scanseal.dicom.scp import Receiver, StorageSCP
    from scanseal.service.app import Metrics, Mount
    from scanseal.service.health import Probe, Watch

_GC_YOUNG_THRESHOLD: Final = 50_000
_M_MMAP_THRESHOLD: Final = -3
"""glibc's mallopt parameter (malloc.h); setting it also ends the threshold's adjustment."""
_MMAP_THRESHOLD: Final = 128 * 1024
"""glibc's own starting value: blocks this large or larger are mapped on their own."""
_UVICORN_STARTUP_FAILURE: Final = 3  # uvicorn's sys.exit code when it cannot listen
_log = logging.getLogger("scanseal.gateway")


@dataclass(frozen=True)
class ServerConfig:
    """Every section ``scanseal serve`` runs on, from one configuration file read once."""

    gateway: GatewayConfig
    ledger: LedgerConfig
    storage: StorageConfig
    dicom: DicomConfig
    forward: ForwardConfig | None
    for_agent: bool = False
    """The file has a [forward] table and no [gateway] one: it configures ``scanseal agent``
    (``config check`` then checks only what the agent needs)."""

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
            for_agent=forward is not None and not config.has("gateway"),
        )


def _settings(config: ServerConfig | Path | None) -> ServerConfig:
    return config if isinstance(config, ServerConfig) else ServerConfig.load(config)


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` found: the problems (none: ready to start), what the configuration
    runs, and what could not be checked without opening the chain or reaching a node."""

    problems: list[ScanSealError]
    runs: list[str]
    not_checked: list[str]


def preflight(settings: ServerConfig | Path | None, keystore: Keystore | None = None) -> Preflight:
    """Everything ``serve`` can check before it unlocks an identity or opens chain and state
    (``scanseal config check``): every problem, each one ScanSealError naming its file, key or
    address (:mod:`scanseal.service.preflight`). For an agent's file, the [forward] table only."""
    settings = _settings(settings)
    keystore = keystore if keystore is not None else Keystore()
    found = [] if settings.for_agent else _gateway_problems(settings, keystore)
    if settings.forward is not None:
        found += _forward_problems(settings.forward, keystore)
    return Preflight(found, _runs(settings), _not_checked(settings))


def _gateway_problems(settings: ServerConfig, keystore: Keystore) -> list[ScanSealError]:
    gateway, dicom = settings.gateway, settings.dicom
    found = checks.gateway_problems(gateway, keystore)
    found += checks.store_problems(settings.ledger, settings.storage)
    found += dicom.problems()
    found += checks.port_problems(gateway.host, gateway.port, "HTTP")
    if dicom.enabled:
        found += checks.port_problems(dicom.host, dicom.port, "DICOM")
    return found


def _forward_problems(forward: ForwardConfig, keystore: Keystore) -> list[ScanSealError]:
    found = checks.identity_problems(forward.identity, "forward", keystore)
    if forward.ca is not None and not forward.ca.is_file():
        found.append(InvalidInput(f"forward: ca {forward.ca} is not a file"))
    return found + checks.directory_problems("forward", "state_dir", forward.state_dir)


def _runs(settings: ServerConfig) -> list[str]:
    gateway, dicom, forward = settings.gateway, settings.dicom, settings.forward
    if settings.for_agent and forward is not None:
        return [f"agent forwarding as {forward.identity!r} to {forward.destination}"]
    where = f"{gateway.scheme}://{gateway.host}"
    where += f":{gateway.port}" if gateway.port else " (any free port)"
    runs = [f"gateway {gateway.identity!r} on {where}"]
    if gateway.members is not None and gateway.members.is_dir():
        runs.append(f"{len(checks.member_cards(gateway.members))} member card(s)")
    runs.append(f"{settings.ledger.backend} chain, {settings.storage.backend} store")
    if dicom.enabled:
        scp = f"DICOM SCP {dicom.ae_title} on {dicom.host}:{dicom.port or '(any free port)'}"
        runs.append(f"{scp} for {len(dicom.card_paths())} card(s)")
    if forward is not None:
        runs.append(f"forwarding as {forward.identity!r} to {forward.destination}")
    return runs


def _not_checked(settings: ServerConfig) -> list[str]:
    ledger, storage, forward = settings.ledger, settings.storage, settings.forward
    missing: list[str] = []
    if ledger.backend == "jsonrpc" and not settings.for_agent:
        missing.append(f"the chain at {ledger.url}")
    if storage.backend == "kubo" and not settings.for_agent:
        missing.append(f"the kubo node(s) {', '.join(storage.nodes)}")
    if forward is not None:
        missing.append(f"the gateway {forward.gateway} and the PACS {forward.destination}")
    return missing


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
        if settings.dicom.enabled:
            _enroll_dicom_cards(gateway, settings.dicom)
    except BaseException:
        gateway.close()
        raise
    return gateway


def _enroll_dicom_cards(gateway: Gateway, dicom: DicomConfig) -> None:
    """Enrol every card the [dicom] recipients and routes name, as the members directory's:
    the SCP seals for them, and an upload for an identity the ledger does not know is refused,
    so a card outside the members directory would fail every C-STORE of its route."""
    for path in sorted(dicom.card_paths()):
        gateway.enroll(IdentityCard.load(path))


def serve(
    gateway: Gateway, settings: ServerConfig | Path | None = None, agent: ForwardAgent | None = None
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM), then anchor what is pending and close;
    SIGHUP reads the members directory again (new and rotated cards, docs/KEYS.md §6).

    With ``[dicom] enabled`` the Storage SCP runs beside the REST API on the same gateway; an
    ``agent`` ([forward]) forwards records granted to its identity into a PACS meanwhile.
    """
    dicom = _settings(settings).dicom
    config = gateway.config
    logs.configure(config.log_format, config.log_level)  # from here on, every line structured
    try:
        listener = _any_free_port(config.host) if config.port == 0 else None
    except ScanSealError:
        gateway.close()
        raise
    port = listener.getsockname()[1] if listener is not None else config.port
    gateway.start()  # the grant-table mirror catches up while the listeners come up
    signal.signal(signal.SIGHUP, lambda _signal, _frame: gateway.members.rescan_soon())
    url = f"{config.scheme}://{config.host}:{port}"
    print(f"scanseal gateway {gateway.identity.address} listening on {url}", flush=True)
    from scanseal.service.app import Metrics, create_app  # FastAPI: only when serving

    metrics = Metrics()
    scp = _start_scp(gateway, dicom, metrics) if dicom.enabled else None
    sys.stdout.flush()
    _tune_collector()
    _tune_allocator()
    stop = threading.Event()
    forwarding = _start_forwarding(agent, stop)
    mounts = _stow_mounts(scp.receiver) if scp and dicom.stow else []
    try:
        app = create_app(gateway, mounts, metrics=metrics, watch=_watch(scp, agent, forwarding))
        _run_http(gateway, app, listener)
    finally:
        stop.set()
        forwarding.join(timeout=60)  # a pass in flight ends after its current record
        if agent is not None:
            agent.close()
        if scp is not None:
            scp.stop()
            scp.receiver.index.close()
        _anchor_pending(gateway)
        gateway.close()


def _anchor_pending(gateway: Gateway) -> None:
    """On the way out, anchor what the batched log holds and say so. When the chain cannot take
    the anchor the entries stay in the log (nothing is lost) and ``gateway.close`` reports
    the failure (exit 5)."""
    ledger = gateway.ledger
    pending = gateway.locked(lambda: ledger.pending if ledger.mode == "batched" else 0)
    if not pending:
        return
    try:
        gateway.locked(ledger.anchor)
    except ScanSealError as error:
        _log.warning("shutting down: %d pending entries stay in the batched log: %s",
                     pending, error.reason)  # fmt: skip
        return
    _log.info("shutting down: anchored %d pending entries", pending)


def _start_scp(gateway: Gateway, dicom: DicomConfig, metrics: Metrics) -> StorageSCP:
    """The Storage SCP over the gateway (as its registrar, sealing as its identity), counting
    every instance in ``metrics``; with ``acknowledge = "durable"`` over the spool under the
    state directory, whose entries from before a restart its workers register first."""
    from scanseal.dicom.index import DicomIndex
    from scanseal.dicom.scp import Receiver, StorageSCP, log_to_stderr
    from scanseal.dicom.spool import Spool, SpoolCollector

    index = DicomIndex.at(gateway.config.state_dir)
    receiver = Receiver(gateway, gateway.identity, dicom, index)
    receiver.observe = metrics.instance
    receiver.recorded = lambda cid: gateway.state.record(cid) is not None
    receiver.ready = lambda: gateway.ready
    receiver.pending = lambda cid: pending_upload(gateway, cid)
    try:
        spool = None
        if dicom.acknowledge == "durable":
            state_dir = gateway.config.state_dir
            spool = Spool.at(state_dir, gateway.identity, dicom.spool_max_instances,
                             dicom.spool_max_mib)  # fmt: skip
        log_to_stderr()  # one line per received instance, with the tamper screen's verdict
        scp = StorageSCP(receiver, spool).start()
    except OSError as error:  # taken since preflight looked (or the spool cannot be made)
        index.close()
        gateway.close()
        raise checks.listen_error(dicom.host, dicom.port, "DICOM", error) from None
    if spool is not None and scp.drain is not None:
        drain = scp.drain
        metrics.registry.register(SpoolCollector(spool.status, lambda: drain.retries))
    print(f"DICOM Storage SCP {dicom.ae_title} on {dicom.host}:{scp.port}", flush=True)
    return scp


def pending_upload(gateway: Gateway, manifest_cid: str) -> tuple[bytes, bytes] | None:
    """The manifest and envelope of an upload the gateway began and did not finish (what the
    SCP's spool registers again rather than seal a second time), or None."""
    from scanseal.service._requests import read_all

    for stored in gateway.state.pending_uploads():
        if stored.manifest_cid == manifest_cid:
            envelope = read_all(gateway.store, stored.envelope_cid)
            return read_all(gateway.store, manifest_cid), envelope
    return None


def _watch(
    scp: StorageSCP | None, agent: ForwardAgent | None, forwarding: threading.Thread
) -> Watch:
    """The SCP and the agent, for /v1/health and /metrics."""
    from scanseal.service.health import Watch

    probes: dict[str, Probe] = {}
    if scp is not None:
        probes["scp"] = lambda: _scp_health(scp)
    if agent is None:
        return Watch(probes)
    probes["agent"] = lambda: agent.health(forwarding.is_alive())
    totals = lambda: asdict(agent.totals)  # noqa: E731
    return Watch(probes, agent_totals=totals, agent_records=agent.state.counts)


def _scp_health(scp: StorageSCP) -> dict[str, object]:
    """The SCP in ``/v1/health``: listening, its AE title and port, when it acknowledges and
    (``durable``) its spool: instances not registered yet, their bytes, the oldest one's wait
    and how many were quarantined."""
    config = scp.config
    found: dict[str, object] = {"ok": scp.listening, "ae_title": config.ae_title,
                                "port": scp.port, "acknowledge": config.acknowledge}  # fmt: skip
    if scp.spool is not None:
        found["spool"] = scp.spool.status().health()
    return found


def _tune_collector() -> None:
    """Everything loaded so far (web3, py-evm, the chain's state) lives as long as the process:
    leaving it out of the collector's full passes keeps them from growing with the imports. A
    fetch allocates a few thousand short-lived objects, which reference counting frees anyway,
    so the young generation's threshold is raised far above the default 700 that would run
    several passes per fetch (docs/PROTOCOL.md §9.5)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, 20, 20)


def _tune_allocator() -> None:
    """Buffers of an envelope's size (a fetch's bundle, an upload's body: hundreds of KiB) get
    mappings of their own, returned to the system when freed. glibc would otherwise raise its
    mmap threshold to the largest block freed and serve later ones from its per-thread heaps,
    which keep what they grew to: answering the fetches of a 2,000-instance study, a gateway
    peaked at 564 MiB, and at about 320 MiB with the threshold fixed (a 300-instance study: 395
    against 273 MiB; bench/study_speed.py). Nothing to do on another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):  # no such library or no mallopt: not glibc
        return


def _start_forwarding(agent: ForwardAgent | None, stop: threading.Event) -> threading.Thread:
    forwarding = threading.Thread(target=lambda: None)
    if agent is not None:
        from scanseal.dicom.agent import log_to_stderr

        log_to_stderr()
        forwarding = threading.Thread(target=agent.run, args=(stop,), name="forward", daemon=True)
    forwarding.start()
    return forwarding


def _any_free_port(host: str) -> socket.socket:
    """``port = 0``: a socket bound to a port the system picks, as uvicorn would bind it, so
    that ``serve`` can say which port before it serves."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
    except OSError as error:
        listener.close()
        raise checks.listen_error(host, 0, "HTTP", error) from None
    return listener


class _Terminated(Exception):
    """SIGTERM, raised again by uvicorn after its graceful shutdown."""


def _terminated(_signum: int, _frame: object) -> None:
    """uvicorn answers SIGTERM by shutting down, then raises the signal again: with the default
    handler the process would end there, before ``serve`` anchors and closes. This handler (the
    one uvicorn restores) turns it into an exception that ``_run_http`` takes like SIGINT's."""
    raise _Terminated


def _run_http(gateway: Gateway, app: ASGIApp, listener: socket.socket | None) -> None:
    """Serve the REST API on ``config.port``, or on ``listener`` (already bound) when given."""
    import uvicorn

    from scanseal.service.app import BoundedHttp

    config = gateway.config
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            log_level="warning",
            log_config=None,  # uvicorn's loggers write through ours (scanseal.service.logs)
            access_log=False,  # the access log is ours: scanseal.access, one line per request
            http=BoundedHttp,
        )
    )
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        server.run(sockets=None if listener is None else [listener])
    except (KeyboardInterrupt, _Terminated):  # the signal uvicorn raises again once shut down
        pass
    except SystemExit as exited:
        if exited.code != _UVICORN_STARTUP_FAILURE:
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:  # uvicorn would exit 3, which ScanSeal reserves for integrity
        raise GatewayUnavailable(
            f"cannot listen on {config.host}:{config.port} (HTTP): the server did not start"
        )


def _stow_mounts(receiver: Receiver) -> list[Mount]:
    """STOW-RS on the gateway's app, over the same receiver as the Storage SCP."""
    from scanseal.dicom.stow import add_routes

    return [lambda app, run, body: add_routes(app, receiver, run, body)]
