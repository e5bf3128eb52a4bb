"""``scanseal config check``: is this configuration ready for ``scanseal serve``?

(Or for ``scanseal agent``: a file with a [forward] table and no [gateway] one is the agent's,
and only what the agent needs is checked.)

It reads the file as ``serve`` does and runs the checks ``serve`` runs before it asks for a
passphrase (:func:`scanseal.service.server.preflight`), without unlocking, opening or starting
anything: each problem is one ``error:`` line on stderr and the exit code is 2; a configuration
without problems prints one ``ok`` line with what it runs, and a line naming what only a start
can tell (a JSON-RPC chain, kubo nodes, whether the ``[dicom]`` cards outside the members
directory are registered on the ledger).
"""

from __future__ import annotations

import typer
from rich.console import Console

from scanseal._cli._common import ConfigOption, refuse
from scanseal.errors import InvalidInput

app = typer.Typer(help="Check the configuration (scanseal.toml).", no_args_is_help=True)
_out = Console(markup=False, highlight=False, soft_wrap=True)
_BAD_CONFIGURATION = InvalidInput.exit_code


@app.command("check")
def check(config: ConfigOption = None) -> None:
    """List every problem of the configuration serve would run on, one line each (exit 2)."""
    from scanseal.config import config_file
    from scanseal.service.server import ServerConfig, preflight

    file = config_file(config)  # a missing file, an unknown table or key, a bad value: the
    settings = ServerConfig.load(config)  # first one found, InvalidInput (exit 2)
    found = preflight(settings)
    refuse(found.problems, _BAD_CONFIGURATION)
    where = file if file is not None else "no file, every default"
    _out.print(f"ok: {where}: {'; '.join(found.runs)}", markup=False)
    if found.not_checked:
        _out.print(f"not checked: {'; '.join(found.not_checked)}", markup=False)
