"""Where ScanSeal keeps its state, and the one configuration file every package reads.

One home directory holds the keystore and local state: ``$SCANSEAL_HOME`` if set, otherwise
``~/.scanseal``. Scripts and CI pass passphrases through ``SCANSEAL_PASSPHRASE`` instead of a
prompt.

The configuration is one TOML file, chosen once by :func:`resolve`: the ``--config`` path, else
``$SCANSEAL_CONFIG``, else ``$SCANSEAL_HOME/scanseal.toml`` if it exists, else nothing (every
default). It is read once and checked against :data:`TABLES` before any package sees it: an
unknown table, an unknown key or a value of the wrong type is one InvalidInput naming the file
and the key, so a typo is never silently a default. Each package builds its typed section
(``StorageConfig``, ``LedgerConfig``, ``GatewayConfig``, ``DicomConfig``, ``ForwardConfig``)
from its :class:`Table`, and applies its own ``SCANSEAL_<TABLE>_*`` environment overrides with
:meth:`Table.with_environment`, through the same coercions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from scanseal._toml import read_toml
from scanseal.errors import InvalidInput

HOME_ENV = "SCANSEAL_HOME"
PASSPHRASE_ENV = "SCANSEAL_PASSPHRASE"  # noqa: S105 - the variable name, not a secret
CONFIG_ENV: Final = "SCANSEAL_CONFIG"
CONFIG_NAME: Final = "scanseal.toml"


def scanseal_home() -> Path:
    """The state directory; created on first use with owner-only permissions."""
    raw = os.environ.get(HOME_ENV)
    home = Path(raw).expanduser() if raw else Path.home() / ".scanseal"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def passphrase_from_env() -> str | None:
    """The non-interactive passphrase, or None when a prompt should ask."""
    return os.environ.get(PASSPHRASE_ENV)


# --- coercions: one per kind of value, shared by every table and the environment -------------

Coerce = Callable[[Any], Any]
"""Turns a TOML (or environment string) value into its typed form; ValueError says why not."""


def text(value: Any) -> str:
    """A string, as it is: ``host = 8`` is refused rather than turned into "8"."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def flag(value: Any) -> bool:
    """A TOML boolean, or (from the environment) 1/0, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise ValueError("not a boolean")


def integer(minimum: int | None = None) -> Coerce:
    """An integer (or its decimal text), at least ``minimum`` when given."""
    return _bounded(int, (int, str), "an integer", minimum)


def number(minimum: float | None = None) -> Coerce:
    """A number of any TOML kind (or its text) as a float, at least ``minimum`` when given."""
    return _bounded(float, (int, float, str), "a number", minimum)


def _bounded(
    convert: Callable[[Any], float], kinds: tuple[type, ...], what: str, minimum: float | None
) -> Coerce:
    def coerce(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, kinds):  # True is an int to Python
            raise ValueError(f"not {what}")
        result = convert(value)
        if minimum is not None and result < minimum:
            raise ValueError(f"must be at least {minimum:g}")
        return result

    return coerce


def path(value: Any) -> Path:
    """A file system path, ``~`` expanded; a relative one is made relative to the file's
    directory by its section (:meth:`Table.relative_to_file`)."""
    return Path(text(value)).expanduser()


def texts(value: Any) -> tuple[str, ...]:
    """A list of strings, or one string of items separated by commas or spaces (environment)."""
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    if not isinstance(value, list):
        raise ValueError("not a list of strings")
    return tuple(text(item) for item in value)


def paths(value: Any) -> tuple[Path, ...]:
    """A list of paths (TOML only: a path may contain a comma or a space)."""
    if not isinstance(value, list):
        raise ValueError("not a list of paths")
    return tuple(path(item) for item in value)


def nested(value: Any) -> Any:
    """A nested table (``[dicom.routes]``), passed on as it is: its section checks its shape."""
    return value


TABLES: Final[Mapping[str, Mapping[str, Coerce]]] = {
    "storage": {  # docs/STORAGE.md
        "backend": text,
        "root": path,
        "nodes": texts,
        "min_replicas": integer(0),
        "timeout": number(0),
        "connect_timeout": number(0),
        "retries": integer(0),
        "backoff": number(0),
        "replicate": text,
        "drain_seconds": number(0),
        "max_lag_seconds": number(0),
    },
    "ledger": {  # docs/LEDGER.md
        "backend": text,
        "url": text,
        "mode": text,
        "batch_size": integer(),
        "batch_seconds": number(),
        "state_dir": path,
        "contract": text,
        "operator": text,
        "durable": flag,
        "timeout": number(),
    },
    "gateway": {  # docs/PROTOCOL.md
        "identity": text,
        "host": text,
        "port": integer(),
        "tls_cert": path,
        "tls_key": path,
        "members": path,
        "auditors": texts,
        "max_lifetime": integer(),
        "clock_skew": integer(),
        "state_dir": path,
        "tick_seconds": number(),
        "log_format": text,
        "log_level": text,
    },
    "dicom": {  # docs/DICOM.md
        "enabled": flag,
        "ae_title": text,
        "host": text,
        "port": integer(),
        "stow": flag,
        "recipients": paths,
        "routes": nested,
        "workers": integer(1),
        "acknowledge": text,
        "spool_max_instances": integer(1),
        "spool_max_mib": integer(1),
        "spool_wait_seconds": number(0),
        "acceptors": integer(0),
    },
    "forward": {  # docs/DICOM.md
        "gateway": text,
        "identity": text,
        "destination": text,
        "calling_ae": text,
        "ca": path,
        "poll_seconds": number(),
        "retry_seconds": number(),
        "max_retry_seconds": number(),
        "state_dir": path,
        "flagged": text,
    },
    "audit": {  # docs/AUDIT.md
        "syslog": text,
        "ca": path,
        "cert": path,
        "key": path,
        "timeout": number(0),
    },
}
"""Every table of scanseal.toml, every key in it and the kind of its value. Keys may be written
with ``-`` for ``_`` (``batch-seconds``)."""


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def coerce(name: str, key: str, value: Any, origin: str) -> Any:
    """``value`` of ``key`` in table ``name`` in its typed form; InvalidInput naming both."""
    kinds = TABLES[name]
    if key not in kinds:
        raise InvalidInput(f"{origin}: unknown {name} setting {key!r}")
    try:
        return kinds[key](value)
    except (TypeError, ValueError, OverflowError) as error:  # Overflow: an int float() cannot hold
        raise InvalidInput(
            f"{origin}: bad value for {key!r} in [{name}]: {_shown(value)} ({error})"
        ) from None


@dataclass(frozen=True, slots=True)
class Table:
    """One checked table: its typed values (only the keys given), and where they came from."""

    name: str
    values: Mapping[str, Any]
    origin: str
    """The file the values came from (or the environment), for error messages."""
    base_dir: Path
    """The directory of that file: every section resolves the relative paths the file gives
    against it (:meth:`relative_to_file`), so a configuration means the same from any working
    directory. A path from an environment variable has no file: it stays as given."""

    def relative_to_file(self, *keys: str) -> Table:
        """These values with the paths of ``keys`` (a path or a tuple of paths) joined to
        :attr:`base_dir`; an absolute path stays as it is."""
        values = dict(self.values)
        for key in keys:
            value = values.get(key)
            if isinstance(value, Path):
                values[key] = self.base_dir / value
            elif isinstance(value, tuple):
                values[key] = tuple(self.base_dir / item for item in value)
        return Table(self.name, values, self.origin, self.base_dir)

    def with_environment(
        self, env: Mapping[str, str], prefix: str, *, strict: bool = False
    ) -> Table:
        """These values overridden by ``PREFIX<KEY>`` variables (empty ones are ignored).

        With ``strict`` a variable under the prefix that names no key is an error; without, such
        variables are left alone (``SCANSEAL_GATEWAY_URL`` is the client's, not the table's).
        """
        origin = f"environment ({prefix}*)"
        names = {key.upper(): key for key in TABLES[self.name]}
        overrides: dict[str, Any] = {}
        for variable, raw in env.items():
            if not variable.startswith(prefix) or not raw:
                continue
            suffix = variable[len(prefix) :]
            if not suffix:
                continue
            key = names.get(suffix.upper())
            if key is None and strict:
                key = suffix.lower()  # coerce() names it as unknown
            if key is not None:
                overrides[key] = coerce(self.name, key, raw, origin)
        return Table(self.name, {**self.values, **overrides}, self.origin, self.base_dir)


@dataclass(frozen=True, slots=True)
class Config:
    """The configuration file, read and checked: its path (None when there is none) and tables."""

    file: Path | None
    tables: Mapping[str, Mapping[str, Any]]

    def has(self, name: str) -> bool:
        """Whether the file has table ``name`` (``[forward]`` runs an agent only when present)."""
        return name in self.tables

    def table(self, name: str) -> Table:
        """Table ``name`` (empty when the file has none)."""
        if name not in TABLES:
            raise KeyError(name)
        origin = str(self.file) if self.file is not None else "defaults"
        base = self.file.parent if self.file is not None else Path()
        return Table(name, self.tables.get(name, {}), origin, base)


def config_file(path: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file: ``path``, else ``$SCANSEAL_CONFIG``, else the home one if present.

    A file named explicitly (by ``path`` or the variable) must exist; the home one is optional.
    """
    env = os.environ if env is None else env
    chosen = path if path is not None else (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if chosen is None:
        default = scanseal_home() / CONFIG_NAME
        return default if default.exists() else None
    if not chosen.exists():
        raise InvalidInput(f"config file {chosen} does not exist")
    return chosen


def resolve(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The configuration, chosen by :func:`config_file`, read once and checked against TABLES."""
    file = config_file(path, env)
    if file is None:
        return Config(None, {})
    document = read_toml(file)
    return Config(file, {name: _checked(name, raw, str(file)) for name, raw in document.items()})


def _checked(name: str, raw: Any, origin: str) -> dict[str, Any]:
    if name not in TABLES:
        what = f"table [{name}]" if isinstance(raw, dict) else f"setting {name!r} outside a table"
        raise InvalidInput(f"{origin}: unknown {what}")
    if not isinstance(raw, dict):
        raise InvalidInput(f"{origin}: [{name}] must be a table")
    values: dict[str, Any] = {}
    for written, value in raw.items():
        key = written.replace("-", "_")
        if key in values:
            raise InvalidInput(f"{origin}: [{name}] sets {key!r} twice")
        values[key] = coerce(name, key, value, origin)
    return values
