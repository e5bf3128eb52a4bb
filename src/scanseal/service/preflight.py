"""What a gateway's configuration names, checked before anything is opened.

``scanseal config check`` and the start of ``scanseal serve`` run the same checks
(:func:`scanseal.service.server.preflight` joins these with the ``[dicom]`` and ``[forward]``
ones): the identities exist in the keystore (so ``serve`` never asks for the passphrase of an
identity that is not there), the members directory exists and its cards parse, the TLS
certificate and key load as a pair, each state directory can be created, each port can be bound.
Every check reports a ScanSealError instead of raising it, so all the problems are listed at
once, one line each. A port in use is GatewayUnavailable (exit 5: most likely a gateway is
running already); everything else is a bad setting, InvalidInput (exit 2).
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from scanseal._disk import disk_error
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.errors import GatewayUnavailable, InvalidInput, ScanSealError
from scanseal.ledger import LedgerConfig
from scanseal.service.config import GatewayConfig
from scanseal.storage import StorageConfig


def problem(check: Callable[[], object]) -> list[ScanSealError]:
    """The ScanSealError ``check`` raises, as a list of zero or one."""
    try:
        check()
    except ScanSealError as error:
        return [error]
    return []


def identity_problems(name: str, table: str, keystore: Keystore) -> list[ScanSealError]:
    """Identity ``name`` must be in the keystore, its card intact (no passphrase needed)."""
    if name not in keystore.names():
        return [
            InvalidInput(
                f"{table}: identity {name!r} is not in the keystore {keystore.root} "
                f"(create it with 'scanseal keys new {name}')"
            )
        ]
    return problem(lambda: keystore.card(name))


def gateway_problems(config: GatewayConfig, keystore: Keystore) -> list[ScanSealError]:
    """The [gateway] table: its identity, members directory and cards, TLS pair, state dir."""
    found = identity_problems(config.identity, "gateway", keystore)
    found += members_problems(config.members)
    cert, key = config.tls_cert, config.tls_key
    if cert is not None and key is not None:
        found += problem(lambda: check_tls(cert, key))
    found += directory_problems("gateway", "state_dir", config.state_dir)
    return found


def members_problems(members: Path | None) -> list[ScanSealError]:
    """The members directory must exist, and every ``*.json`` card in it parse."""
    if members is None:
        return []
    if not members.is_dir():
        return [InvalidInput(f"gateway: members {members} is not a directory")]
    found: list[ScanSealError] = []
    for path in member_cards(members):
        try:
            IdentityCard.load(path)
        except ScanSealError as error:
            found.append(type(error)(f"gateway: members: {error.reason}"))
    return found


def member_cards(members: Path) -> list[Path]:
    """The card files the gateway enrolls from its members directory, in order."""
    return sorted(members.glob("*.json"))


def store_problems(ledger: LedgerConfig, storage: StorageConfig) -> list[ScanSealError]:
    """The local directories of the embedded chain and the embedded block store."""
    found: list[ScanSealError] = []
    if ledger.backend == "embedded":
        found += directory_problems("ledger", "state_dir", ledger.state_dir)
    if storage.backend == "embedded":
        found += directory_problems("storage", "root", storage.block_root())
    return found


def directory_problems(table: str, key: str, path: Path) -> list[ScanSealError]:
    """``path`` is a directory, or the nearest existing one above it is one ScanSeal may write
    into (state directories are created on first use, parents included)."""
    if path.exists():
        return [] if path.is_dir() else [InvalidInput(f"{table}: {key} {path} is not a directory")]
    above = path.absolute().parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        return [
            InvalidInput(f"{table}: {key} {path} cannot be created: {above} is not a directory")
        ]
    if not os.access(above, os.W_OK | os.X_OK):
        return [InvalidInput(f"{table}: {key} {path} cannot be created in {above}: not writable")]
    return []


def check_tls(cert: Path, key: Path) -> None:
    """The certificate and key files exist and load as a pair; InvalidInput naming them."""
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


def port_problems(host: str, port: int, what: str) -> list[ScanSealError]:
    """:func:`check_port`'s error, if any (port 0 checks that ``host`` can be bound at all)."""
    return problem(lambda: check_port(host, port, what))


def check_port(host: str, port: int, what: str) -> None:
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
                raise listen_error(host, port, what, error) from None


def listen_error(host: str, port: int, what: str, error: OSError) -> ScanSealError:
    """Why ``host:port`` cannot be listened on: in use (exit 5), or a bad address (exit 2)."""
    where = f"cannot listen on {host}:{port} ({what})"
    if error.errno == errno.EADDRINUSE:
        return GatewayUnavailable(f"{where}: the port is in use (is a gateway running already?)")
    return InvalidInput(f"{where}: {error.strerror or error}")
