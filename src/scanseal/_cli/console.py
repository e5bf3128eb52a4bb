"""``scanseal console``: the web console on 127.0.0.1, signing as one identity of the keystore."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console as Terminal

from scanseal._cli._common import AsName, CaOption, ConfigOption, GatewayOption, connect
from scanseal.crypto.identity import Keystore
from scanseal.errors import ScanSealError

_out = Terminal(markup=False, highlight=False, soft_wrap=True)


def console(
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")
    ] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL only; do not open a browser.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve the web console on 127.0.0.1 and open it: inbox, records, audit, verify, health.

    Prints a link with a one-time token: the first browser to open it gets the session.
    Gateway requests are signed here with your key, which never reaches the browser.
    Inclusion proofs are compared with the roots anchored on the chain of --config's ledger table.
    Ctrl-C stops it (docs/CONSOLE.md).
    """
    from scanseal.console import serve
    from scanseal.ledger import LedgerConfig

    ledger = LedgerConfig.load(config)
    with connect(gateway, ca, as_name) as client:
        serve(
            client, _card_names(), port=port, open_browser=not no_browser,
            announce=_announce, ledger=ledger,
        )  # fmt: skip


def _announce(url: str) -> None:
    _out.print(f"console: {url}")
    _out.file.flush()  # a script reading the URL from a pipe gets it now


def _card_names() -> dict[str, str]:
    """Names by address from the keystore's cards."""
    keystore, names = Keystore(), {}
    for name in keystore.names():
        try:
            card = keystore.card(name)
        except ScanSealError:
            continue
        names[card.address] = card.name
    return names


def register(app: typer.Typer) -> None:
    app.command("console")(console)
