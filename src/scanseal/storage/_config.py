"""Storage configuration: the ``[storage]`` table of ``scanseal.toml``, then env vars.

Precedence, lowest first: built-in defaults (embedded store, no node needed), the TOML file
(``--config``, else ``$SCANSEAL_CONFIG``, else ``$SCANSEAL_HOME/scanseal.toml`` if present),
then ``SCANSEAL_STORAGE_*`` environment variables. Unknown keys are refused, so a typo cannot
silently fall back to a default. docs/STORAGE.md lists every key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from scanseal._toml import read_toml
from scanseal.config import scanseal_home
from scanseal.errors import InvalidInput

CONFIG_ENV = "SCANSEAL_CONFIG"
_ENV_PREFIX = "SCANSEAL_STORAGE_"
_BACKENDS = ("embedded", "kubo")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Which store to open and how to talk to its nodes."""

    backend: str = "embedded"
    root: Path | None = None
    """Local block store; ``$SCANSEAL_HOME/blocks`` when unset."""
    nodes: tuple[str, ...] = ()
    """kubo RPC URLs, e.g. ``http://127.0.0.1:5001``."""
    min_replicas: int = 2
    timeout: float = 30.0
    """Seconds a node may stay silent during a call (and its server-side timeout)."""
    connect_timeout: float = 3.0
    retries: int = 3
    """Retries per node after the first attempt, with exponential backoff."""
    backoff: float = 0.2
    """First backoff delay in seconds; doubles on each retry."""

    def block_root(self) -> Path:
        return self.root if self.root is not None else scanseal_home() / "blocks"


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> StorageConfig:
    """Read the storage configuration; an explicit ``path`` must exist."""
    env = os.environ if env is None else env
    config = StorageConfig()
    source = path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if source is None:
        default = scanseal_home() / "scanseal.toml"
        source = default if default.exists() else None
    elif not source.exists():
        raise InvalidInput(f"config file {source} does not exist")
    if source is not None:
        config = _apply(config, _read_table(source), str(source))
    overrides = {
        name.lower(): value
        for key, value in env.items()
        if key.startswith(_ENV_PREFIX) and (name := key[len(_ENV_PREFIX) :])
    }
    config = _apply(config, overrides, "environment (SCANSEAL_STORAGE_*)")
    if config.backend not in _BACKENDS:
        raise InvalidInput(f"storage backend must be one of {_BACKENDS}, got {config.backend!r}")
    return config


def _read_table(path: Path) -> dict[str, Any]:
    table = read_toml(path).get("storage", {})
    if not isinstance(table, dict):
        raise InvalidInput(f"{path}: [storage] must be a table")
    return table


def _apply(config: StorageConfig, values: Mapping[str, Any], origin: str) -> StorageConfig:
    known = {field.name: field for field in fields(StorageConfig)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise InvalidInput(f"{origin}: unknown storage setting {key!r}")
        changes[key] = _coerce(key, value, origin)
    return replace(config, **changes)


def _coerce(key: str, value: Any, origin: str) -> Any:
    try:
        if key == "nodes":
            items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
            return tuple(str(item) for item in items)
        if key == "root":
            return Path(str(value)).expanduser()
        if key in ("min_replicas", "retries"):
            number = int(value)
            if number < 0:
                raise ValueError("must not be negative")
            return number
        if key in ("timeout", "connect_timeout", "backoff"):
            seconds = float(value)
            if seconds < 0:
                raise ValueError("must not be negative")
            return seconds
        return str(value)
    except (TypeError, ValueError, OverflowError) as error:  # Overflow: an int float() cannot hold
        raise InvalidInput(f"{origin}: bad value for {key!r}: {value!r} ({error})") from None
