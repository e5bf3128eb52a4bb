"""Where ScanSeal keeps its state, and how that is configured.

One home directory holds the keystore and local state: ``$SCANSEAL_HOME`` if set, otherwise
``~/.scanseal``. Scripts and CI pass passphrases through ``SCANSEAL_PASSPHRASE`` instead of a
prompt.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SCANSEAL_HOME"
PASSPHRASE_ENV = "SCANSEAL_PASSPHRASE"  # noqa: S105 - the variable name, not a secret


def scanseal_home() -> Path:
    """The state directory; created on first use with owner-only permissions."""
    raw = os.environ.get(HOME_ENV)
    home = Path(raw).expanduser() if raw else Path.home() / ".scanseal"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def passphrase_from_env() -> str | None:
    """The non-interactive passphrase, or None when a prompt should ask."""
    return os.environ.get(PASSPHRASE_ENV)
