"""Gateway configuration: the [gateway] table of scanseal.toml, then SCANSEAL_GATEWAY_* variables.

The same file carries the [ledger] and [storage] tables, so one ``--config`` picks the chain
(embedded by default, JSON-RPC by URL) and the block store (embedded, or kubo nodes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from scanseal._toml import read_toml
from scanseal.config import scanseal_home
from scanseal.errors import InvalidInput

ENV_PREFIX = "SCANSEAL_GATEWAY_"


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway listens, as whom, and how strict its request window is."""

    identity: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8470
    tls_cert: Path | None = None
    tls_key: Path | None = None
    members: Path | None = None
    auditors: tuple[str, ...] = ()
    max_lifetime: int = 300
    clock_skew: int = 30
    state_dir: Path = field(default_factory=lambda: scanseal_home() / "gateway")
    tick_seconds: float = 1.0

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput("gateway: set both tls_cert and tls_key, or neither")
        if self.max_lifetime < 1 or self.clock_skew < 0 or not 0 < self.port < 65536:
            raise InvalidInput("gateway: max_lifetime, clock_skew or port out of range")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if env is None else env
        file = path if path is not None else scanseal_home() / "scanseal.toml"
        values: dict[str, Any] = {}
        if path is not None and not file.exists():
            raise InvalidInput(f"config file {file} does not exist")
        if file.exists():
            values.update(_table(file))
        for name in _names():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw:
                values[name] = raw.split(",") if name == "auditors" else raw
        return replace(cls(), **{k: _coerce(k, v) for k, v in values.items()})


def _names() -> list[str]:
    return [f.name for f in fields(GatewayConfig)]


def _table(file: Path) -> dict[str, Any]:
    table = read_toml(file).get("gateway", {})
    if not isinstance(table, dict):
        raise InvalidInput(f"{file}: [gateway] must be a table")
    return {key.replace("-", "_"): value for key, value in table.items()}


def _coerce(name: str, raw: Any) -> Any:
    try:
        if name in ("port", "max_lifetime", "clock_skew"):
            return int(raw)
        if name == "tick_seconds":
            return float(raw)
        if name in ("tls_cert", "tls_key", "members", "state_dir"):
            return Path(str(raw)).expanduser()
        if name == "auditors":
            return tuple(to_checksum_address(str(a).strip()) for a in raw if str(a).strip())
        if name in ("identity", "host"):
            return str(raw)
    except (TypeError, ValueError, OverflowError) as error:  # Overflow: an int float() cannot hold
        raise InvalidInput(f"gateway setting {name}: {error}") from error
    raise InvalidInput(f"unknown gateway setting {name!r}")
