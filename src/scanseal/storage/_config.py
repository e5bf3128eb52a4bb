"""Storage configuration: the ``[storage]`` table of ``scanseal.toml``, then env vars.

Precedence, lowest first: built-in defaults (embedded store, no node needed), the file that
:func:`scanseal.config.resolve` chooses (``--config``, else ``$SCANSEAL_CONFIG``, else
``$SCANSEAL_HOME/scanseal.toml`` if present), then ``SCANSEAL_STORAGE_*`` environment variables.
Unknown keys are refused, in the file and under the variable prefix, so a typo cannot silently
fall back to a default. docs/STORAGE.md lists every key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from scanseal.config import Config, Table, resolve, scanseal_home
from scanseal.errors import InvalidInput

ENV_PREFIX = "SCANSEAL_STORAGE_"
_BACKENDS = ("embedded", "kubo")
_MODES = ("sync", "queued")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Which store to open and how to talk to its nodes."""

    backend: str = "embedded"
    root: Path | None = None
    """Local block store; ``$SCANSEAL_HOME/blocks`` when unset. Relative: to the configuration
    file's directory (from ``SCANSEAL_STORAGE_ROOT``, to the working directory)."""
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
    replicate: str = "sync"
    """``sync``: a put returns once ``min_replicas`` nodes pin it. ``queued``: once it is
    committed (fsynced) locally with a queue row; the nodes are reached in the background."""
    drain_seconds: float = 5.0
    """How long closing a queued store waits for its queue to drain before leaving the rest."""
    max_lag_seconds: float = 300.0
    """Health fails once the oldest queued object has waited longer than this."""

    def block_root(self) -> Path:
        return self.root if self.root is not None else scanseal_home() / "blocks"

    @classmethod
    def from_table(cls, table: Table) -> StorageConfig:
        """The defaults overridden by the checked ``[storage]`` table (and its environment)."""
        config = replace(cls(), **table.values)
        if config.backend not in _BACKENDS:
            raise InvalidInput(
                f"storage backend must be one of {_BACKENDS}, got {config.backend!r}"
            )
        if config.replicate not in _MODES:
            raise InvalidInput(
                f"storage replicate must be one of {_MODES}, got {config.replicate!r}"
            )
        return config


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    resolved: Config | None = None,
) -> StorageConfig:
    """The storage configuration; an explicit ``path`` (or ``$SCANSEAL_CONFIG``) must exist.
    ``resolved``: the configuration a caller read already (then ``path`` is not read again)."""
    env = os.environ if env is None else env
    config = resolve(path, env) if resolved is None else resolved
    file_table = config.table("storage").relative_to_file("root")
    table = file_table.with_environment(env, ENV_PREFIX, strict=True)
    return StorageConfig.from_table(table)
