"""``scanseal serve`` and ``certs``: the gateway itself.

The commands that talk to a gateway — ``send``, ``inbox``, ``fetch``, ``grant``, ``revoke`` —
are in ``studies``; their gateway URL comes from ``--gateway`` or ``$SCANSEAL_GATEWAY_URL``, a
private CA certificate for TLS from ``--ca`` or ``$SCANSEAL_GATEWAY_CA``. ``scanseal audit`` and
``scanseal verify`` take the same ``--gateway`` option (see their modules).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape  # help text is Rich markup: "[gateway]" would vanish

from scanseal._cli._common import (
    ConfigOption,
    agent_for,
    read_passphrase,
    refuse,
)
from scanseal._lock import home_lock

_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format", help=escape("text or json (one object per line); [gateway] log_format.")
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option("--log-level", help=escape("debug, info, warning or error; [gateway] log_level.")),
]


def serve(
    config: ConfigOption = None, log_format: LogFormat = None, log_level: LogLevel = None
) -> None:
    """Run the department gateway (embedded chain and store unless configured otherwise)."""
    from scanseal.service.server import ServerConfig, open_gateway, preflight
    from scanseal.service.server import serve as run

    settings = ServerConfig.load(config)  # the one read of scanseal.toml
    gateway = settings.gateway
    gateway = replace(gateway, log_format=log_format or gateway.log_format,
                      log_level=log_level or gateway.log_level)  # fmt: skip
    settings = replace(settings, gateway=gateway)
    with ExitStack() as held:  # one serve per home (and one agent, with [forward]), first
        held.enter_context(home_lock("serve"))
        if settings.forward is not None:
            held.enter_context(home_lock("agent"))
        refuse(preflight(settings).problems)  # before the passphrase, chain and state
        forwarder = agent_for(settings.forward)  # [forward]: records into this department's PACS
        run(open_gateway(settings, read_passphrase(settings.gateway.identity)), settings, forwarder)


def certs(
    directory: Annotated[Path, typer.Argument(help="Where ca.pem, ca.key, server.pem, .key go.")],
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="DNS name or IP of the gateway (repeatable)."),
    ] = None,
    new_ca: Annotated[
        bool, typer.Option("--new-ca", help="Replace the CA too (every client needs the new one).")
    ] = False,
) -> None:
    """Create a private CA and a gateway certificate for TLS.

    Run again: a new certificate under the same CA (clients keep ca.pem), unless --new-ca."""
    from scanseal.service.tls import make_certs

    files = make_certs(directory, name or None, new_ca=new_ca)
    _out.print(_CA_OUTCOME[files.outcome].format(ca=files.ca, key=files.ca_key), markup=False)
    _out.print(
        f"certificate {files.cert}  key {files.key}  (tls_cert / tls_key in [gateway])",
        markup=False,
    )


_CA_OUTCOME = {
    "created": "new CA {ca}  (give it to clients: --ca; keep its key {key} to renew)",
    "renewed": "CA {ca} kept (clients need nothing new); the certificate below is renewed "
    "under it: restart the gateway to serve it",
    "replaced": "replaced the CA {ca} and its key {key}: every client needs the new ca.pem",
}


def register(app: typer.Typer) -> None:
    for name, command in (
        ("serve", serve),
        ("certs", certs),
    ):
        app.command(name)(command)
