"""Live sending to an ATNA audit record repository: each trail event's DICOM audit message as
an RFC 5424 syslog message over TLS, framed by octet counting (RFC 5425 §4.3).

Configured in the ``[audit]`` table of scanseal.toml (``syslog = "host:port"``, ``ca`` the CA
that signed the repository's certificate, ``cert``/``key`` a client certificate when the
repository asks for one, as ATNA's node authentication does), else ``SCANSEAL_AUDIT_*``.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from scanseal.config import Table, resolve
from scanseal.errors import GatewayUnavailable, InvalidInput

ENV_PREFIX: Final = "SCANSEAL_AUDIT_"
PRIORITY: Final = 10 * 8 + 5
"""Facility 10 (security/authorization), severity 5 (notice), as ATNA sends audit messages."""
APP_NAME: Final = "scanseal"
MSG_ID: Final = "IHE+RFC-3881"
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class AuditConfig:
    """Where audit messages go: ``syslog`` as ``host:port`` (None: nowhere)."""

    syslog: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    timeout: float = 10.0

    @classmethod
    def from_table(cls, table: Table, env: Mapping[str, str]) -> AuditConfig:
        relative = table.relative_to_file("ca", "cert", "key")
        return replace(cls(), **dict(relative.with_environment(env, ENV_PREFIX).values))

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> AuditConfig:
        env = os.environ if env is None else env
        return cls.from_table(resolve(path, env).table("audit"), env)

    def address(self) -> tuple[str, int]:
        """The repository's host and port; InvalidInput when unset or malformed."""
        if not self.syslog:
            raise InvalidInput('no audit repository: set [audit] syslog = "host:port"')
        host, _, port = self.syslog.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidInput(f"[audit] syslog must be host:port, not {self.syslog!r}")
        return host.strip("[]"), int(port)


def syslog_message(payload: bytes, *, hostname: str | None = None) -> bytes:
    """One RFC 5424 message carrying ``payload`` (UTF-8, after a BOM), stamped now."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = _header_field(hostname or socket.gethostname())
    header = f"<{PRIORITY}>1 {stamp} {host} {APP_NAME} {os.getpid()} {MSG_ID} - "
    return header.encode("ascii") + _BOM + payload


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 framing: the message's length in octets, a space, the message."""
    return b"%d " % len(message) + message


def send_messages(config: AuditConfig, payloads: Iterable[bytes]) -> int:
    """Send each payload as one syslog message over one TLS connection; how many were sent."""
    host, port = config.address()
    context = ssl.create_default_context(cafile=str(config.ca) if config.ca else None)
    if config.cert is not None:
        context.load_cert_chain(str(config.cert), str(config.key) if config.key else None)
    sent = 0
    try:
        connect = socket.create_connection((host, port), timeout=config.timeout)
        with connect as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            for payload in payloads:
                tls.sendall(octet_counted(syslog_message(payload)))
                sent += 1
    except (OSError, ssl.SSLError) as error:
        raise GatewayUnavailable(f"audit repository {host}:{port}: {error}") from None
    return sent


def _header_field(value: str) -> str:
    """A header field as RFC 5424 allows: printable US-ASCII without spaces, at most 255."""
    kept = "".join(c for c in value if 33 <= ord(c) <= 126)
    return kept[:255] or "-"
