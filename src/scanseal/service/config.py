"""Gateway configuration: the [gateway] table of scanseal.toml, then SCANSEAL_GATEWAY_* variables.

The same file carries the [ledger] and [storage] tables, so one ``--config`` picks the chain
(embedded by default, JSON-RPC by URL) and the block store (embedded, or kubo nodes); which file,
and how its values are checked, is :func:`scanseal.config.resolve`'s. Relative paths in the file
are relative to the file's directory (in a ``SCANSEAL_GATEWAY_*`` variable, to the working
directory). ``SCANSEAL_GATEWAY_AUDITORS`` is a comma-separated list of addresses and members'
card names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from eth_utils.address import to_checksum_address

from scanseal.config import Table, resolve, scanseal_home
from scanseal.errors import InvalidInput
from scanseal.service import logs

ENV_PREFIX = "SCANSEAL_GATEWAY_"
_CARD_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""An auditor given by a member's card name rather than an address (not 0x…)."""


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway listens, as whom, and how strict its request window is."""

    identity: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8470
    """0: a port the system picks; ``serve`` prints the one it listens on."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    members: Path | None = None
    auditors: tuple[str, ...] = ()
    max_lifetime: int = 300
    clock_skew: int = 30
    state_dir: Path = field(default_factory=lambda: scanseal_home() / "gateway")
    tick_seconds: float = 1.0
    log_format: str = "text"
    """``text`` or ``json`` (one object per line); docs/OPERATIONS.md lists the fields."""
    log_level: str = "info"

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput("gateway: set both tls_cert and tls_key, or neither")
        if self.max_lifetime < 1 or self.clock_skew < 0 or not 0 <= self.port < 65536:
            raise InvalidInput("gateway: max_lifetime, clock_skew or port out of range")
        log_problem = logs.check(self.log_format, self.log_level)
        if log_problem is not None:
            raise InvalidInput(f"gateway: {log_problem}")

    def is_auditor(self, address: str, names: Mapping[str, str]) -> bool:
        """Whether ``address`` is listed in ``auditors``, by itself or by its member's card
        name (``names``: name by address)."""
        return address in self.auditors or names.get(address, "\0") in self.auditors

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @classmethod
    def from_table(cls, table: Table, env: Mapping[str, str]) -> GatewayConfig:
        """The defaults, then the checked [gateway] table, then its environment variables."""
        relative = table.relative_to_file("tls_cert", "tls_key", "members", "state_dir")
        values = dict(relative.with_environment(env, ENV_PREFIX).values)
        if "auditors" in values:
            values["auditors"] = _auditors(values["auditors"])
        return replace(cls(), **values)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """Defaults, then the file :func:`scanseal.config.resolve` chooses, then the environment."""
        env = os.environ if env is None else env
        return cls.from_table(resolve(path, env).table("gateway"), env)


def _auditors(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses (checksummed) and members' card names, as given."""
    try:
        return tuple(
            e if not e.startswith("0x") and _CARD_NAME.fullmatch(e) else to_checksum_address(e)
            for e in entries
        )
    except ValueError as error:
        raise InvalidInput(f"gateway setting auditors: {error}") from None
