"""Ledger configuration: the [ledger] table of scanseal.toml, overridden by environment variables.

Precedence, lowest first: built-in defaults (embedded chain, per-record mode), the [ledger] table
of `$SCANSEAL_HOME/scanseal.toml` (or the file given with --config), then SCANSEAL_LEDGER_*
variables. The funder key (which pays gas for new actors on a JSON-RPC chain) is read only from
the environment so that it never sits in a config file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scanseal._toml import read_toml
from scanseal.config import scanseal_home
from scanseal.errors import InvalidInput
from scanseal.ledger.models import Mode

CONFIG_NAME = "scanseal.toml"
ENV_PREFIX = "SCANSEAL_LEDGER_"
FUNDER_KEY_ENV = "SCANSEAL_LEDGER_FUNDER_KEY"


@dataclass(frozen=True)
class LedgerConfig:
    """Where the chain is, which mode anchors records, and where local state lives."""

    backend: str = "embedded"
    url: str | None = None
    mode: Mode = "per-record"
    batch_size: int = 256
    batch_seconds: float = 5.0
    state_dir: Path = field(default_factory=lambda: scanseal_home() / "chain")
    contract: str | None = None
    operator: str | None = None
    durable: bool = False
    timeout: float = 30.0
    funder_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.backend not in ("embedded", "jsonrpc"):
            raise InvalidInput(f"ledger backend must be embedded or jsonrpc, not {self.backend!r}")
        if self.backend == "jsonrpc" and not self.url:
            raise InvalidInput("the jsonrpc ledger backend needs a url")
        if self.mode not in ("per-record", "batched"):
            raise InvalidInput(f"ledger mode must be per-record or batched, not {self.mode!r}")
        if self.batch_size < 1 or self.batch_seconds <= 0 or self.timeout <= 0:
            raise InvalidInput("batch_size, batch_seconds and timeout must be positive")

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> LedgerConfig:
        """Defaults, then the TOML file (if any), then the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        file = path if path is not None else scanseal_home() / CONFIG_NAME
        if path is not None and not file.exists():
            raise InvalidInput(f"config file {file} does not exist")
        if file.exists():
            values.update(_table_from_file(file))
        values.update(_values_from_env(env))
        try:
            return replace(cls(), **values)
        except TypeError as error:
            raise InvalidInput(f"ledger configuration: {error}") from error


_FIELDS: dict[str, type] = {
    "backend": str,
    "url": str,
    "mode": str,
    "batch_size": int,
    "batch_seconds": float,
    "state_dir": Path,
    "contract": str,
    "operator": str,
    "durable": bool,
    "timeout": float,
}


def _coerce(name: str, raw: object) -> object:
    kind = _FIELDS.get(name)
    if kind is None:
        raise InvalidInput(f"unknown ledger setting {name!r}")
    try:
        if kind is Path:
            return Path(str(raw)).expanduser()
        if kind is bool and isinstance(raw, str):
            return _boolean(raw)
        if kind is int and isinstance(raw, str):
            return int(raw)
        if kind is float and isinstance(raw, str | int):
            return float(raw)
    except (ValueError, OverflowError) as error:  # Overflow: an int float() cannot hold
        raise InvalidInput(f"ledger setting {name}: {error}") from error
    if not isinstance(raw, kind):
        raise InvalidInput(f"ledger setting {name} must be {kind.__name__}")
    return raw


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean")


def _table_from_file(file: Path) -> dict[str, object]:
    table = read_toml(file).get("ledger", {})
    if not isinstance(table, dict):
        raise InvalidInput(f"{file}: [ledger] must be a table")
    return {key.replace("-", "_"): _coerce(key.replace("-", "_"), v) for key, v in table.items()}


def _values_from_env(env: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw:
            values[name] = _coerce(name, raw)
    if env.get(FUNDER_KEY_ENV):
        values["funder_key"] = env[FUNDER_KEY_ENV]
    return values
