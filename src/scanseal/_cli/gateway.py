"""``scanseal serve`` and ``certs``: the gateway itself.

The commands that talk to a gateway — ``send``, ``inbox``, ``fetch``, ``grant``, ``revoke`` —
are in ``studies``; their gateway URL comes from ``--gateway`` or ``$SCANSEAL_GATEWAY_URL``, a
private CA certificate for TLS from ``--ca`` or ``$SCANSEAL_GATEWAY_CA``. ``scanseal audit`` and
``scanseal verify`` take the same ``--gateway`` option (see their modules).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from scanseal._cli._common import (
    ConfigOption,
    agent_for,
    read_passphrase,
    refuse,
)
from scanseal._lock import home_lock

if TYPE_CHECKING:  # the client pulls in httpx: import it only when talking to a gateway
    pass

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def serve(config: ConfigOption = None) -> None:
    """Run the department gateway (embedded chain and store unless configured otherwise)."""
    from scanseal.service.server import ServerConfig, open_gateway, preflight
    from scanseal.service.server import serve as run

    settings = ServerConfig.load(config)  # the one read of scanseal.toml
    with ExitStack() as held:  # one serve per home (and one agent, with [forward]), first
        held.enter_context(home_lock("serve"))
        if settings.forward is not None:
            held.enter_context(home_lock("agent"))
        refuse(preflight(settings).problems)  # before the passphrase, chain and state
        forwarder = agent_for(settings.forward)  # [forward]: records into this department's PACS
        run(open_gateway(settings, read_passphrase(settings.gateway.identity)), settings, forwarder)


def certs(
    directory: Annotated[Path, typer.Argument(help="Where to write ca.pem, server.pem, .key.")],
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="DNS name or IP of the gateway (repeatable)."),
    ] = None,
) -> None:
    """Create a private CA and a gateway certificate for TLS."""
    from scanseal.service.tls import make_certs

    files = make_certs(directory, name or None)
    _out.print(f"CA {files.ca}  (give it to clients: --ca)")
    _out.print(
        f"certificate {files.cert}  key {files.key}  (tls_cert / tls_key in [gateway])",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    for name, command in (
        ("serve", serve),
        ("certs", certs),
    ):
        app.command(name)(command)
