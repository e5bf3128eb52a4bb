"""Ledger configuration: the [ledger] table of scanseal.toml, overridden by environment variables.

Precedence, lowest first: built-in defaults (embedded chain, per-record mode), the [ledger] table
of the file :func:`scanseal.config.resolve` chooses (``--config``, else ``$SCANSEAL_CONFIG``, else
``$SCANSEAL_HOME/scanseal.toml``), then SCANSEAL_LEDGER_* variables (``SCANSEAL_LEDGER_<KEY>``).
A relative ``state_dir`` is relative to the file's directory (in the environment, to the working
directory). The funder key (which pays gas
for new actors on a JSON-RPC chain) is read only from the environment so that it never sits in a
config file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from scanseal.config import Table, resolve, scanseal_home
from scanseal.errors import InvalidInput
from scanseal.ledger.models import Mode

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
    def from_table(cls, table: Table, env: Mapping[str, str]) -> LedgerConfig:
        """The defaults, then the checked [ledger] table and its environment, then the funder."""
        relative = table.relative_to_file("state_dir")
        values = dict(relative.with_environment(env, ENV_PREFIX).values)
        if env.get(FUNDER_KEY_ENV):
            values["funder_key"] = env[FUNDER_KEY_ENV]
        return replace(cls(), **values)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> LedgerConfig:
        """Defaults, then the TOML file :func:`scanseal.config.resolve` chooses, then the
        environment."""
        env = os.environ if env is None else env
        return cls.from_table(resolve(path, env).table("ledger"), env)
