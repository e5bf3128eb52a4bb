"""``scanseal backup OUT`` and ``scanseal restore IN``: the whole home in one verified archive.

The home is ``$SCANSEAL_HOME``; the configuration (``--config``, ``$SCANSEAL_CONFIG`` or the
home's scanseal.toml) tells ``backup`` where the gateway and the agent keep their state, so that
state kept outside the home is refused rather than silently missed, and which of the files it
names (itself, the members directory, the TLS files) live outside and are not in the archive.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scanseal._cli._common import ConfigOption
from scanseal.backup import backup_home, restore_home
from scanseal.config import config_file, scanseal_home

_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Attach ``scanseal backup`` and ``scanseal restore`` as top-level commands."""
    app.command("backup")(backup)
    app.command("restore")(restore)


def backup(
    out: Annotated[Path, typer.Argument(help="The archive to write (a new file, mode 0600).")],
    config: ConfigOption = None,
) -> None:
    """Archive $SCANSEAL_HOME with a SHA-256 manifest (serve and agent stopped).

    The keys stay encrypted; the state, the embedded chain and the block store go in whole."""
    from scanseal.service.server import ServerConfig

    home = scanseal_home().resolve()
    settings = ServerConfig.load(config)
    state = [settings.gateway.state_dir, settings.ledger.state_dir]
    state.append(settings.storage.block_root())
    if settings.forward is not None:
        state.append(settings.forward.state_dir)
    summary = backup_home(home, out, state)
    _out.print(
        f"backed up {summary.files} files ({_size(summary.bytes)}, {summary.databases} SQLite "
        f"database(s) through the backup API) from {home} to {summary.archive}",
        markup=False,
    )
    named = [config_file(config), settings.gateway.members, settings.gateway.tls_cert]
    named.append(settings.gateway.tls_key)
    for path in named:
        if path is not None and not path.resolve().is_relative_to(home):
            _err.print(f"note: {path} is outside {home} and not in the archive", markup=False)


def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by scanseal backup.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Restore over a home that has content, moved first into "
            "$SCANSEAL_HOME/.before-restore-STAMP (nothing is deleted).",
        ),
    ] = False,
) -> None:
    """Restore ARCHIVE as $SCANSEAL_HOME once every file matched its manifest.

    The home must be empty unless --force; nothing is written if any file does not match."""
    summary = restore_home(archive, scanseal_home(), force=force)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(summary.created))
    _out.print(
        f"restored {summary.files} files ({_size(summary.bytes)}, backup of {when}) into "
        f"{summary.home}; every SHA-256 matched its manifest",
        markup=False,
    )
    if summary.moved_aside is not None:
        _out.print(f"what was there before is in {summary.moved_aside}", markup=False)


def _size(count: int) -> str:
    """Bytes for people: 512 B, 3.4 MiB."""
    if count < 1024:
        return f"{count} B"
    value, unit = count / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"
