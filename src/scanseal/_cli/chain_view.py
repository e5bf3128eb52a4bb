"""``scanseal ledger tx`` and ``scanseal ledger rpc``: the chain's evidence, readable by anyone.

``tx HASH`` shows one transaction of the configured chain (embedded or JSON-RPC, or ``--rpc``):
block, sender, recipient, status, gas, and for the ImageRegistry the function it called and the
events it emitted, decoded with the committed ABI. ``rpc`` serves the embedded chain read-only
over JSON-RPC on 127.0.0.1 for external tools. Both read the embedded chain as a replica of its
journal and take no lock, so they run beside ``scanseal serve``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from scanseal._cli._common import ConfigOption

_out = Console(highlight=False, soft_wrap=True, markup=False)


def register(ledger_app: typer.Typer) -> None:
    """Attach ``tx`` and ``rpc`` to the ``scanseal ledger`` group."""
    ledger_app.command("tx")(tx)
    ledger_app.command("rpc")(rpc)


def tx(
    tx_hash: Annotated[str, typer.Argument(metavar="HASH", help="Transaction hash (0x…).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
    rpc_url: Annotated[
        str | None, typer.Option("--rpc", help="Read this JSON-RPC node instead.")
    ] = None,
    contract: Annotated[
        str | None, typer.Option("--contract", help="ImageRegistry address (with --rpc).")
    ] = None,
) -> None:
    """Show a transaction: block, from, to, status, gas, the decoded call and events."""
    from scanseal.ledger import LedgerConfig, describe_transaction, open_reader

    reader = open_reader(LedgerConfig.load(config), rpc_url, contract)
    try:
        shown = describe_transaction(reader, tx_hash)
    finally:
        reader.close()
    if as_json:
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
    else:
        _print(shown)


def rpc(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any).")] = 8545,
    config: ConfigOption = None,
) -> None:
    """Serve the embedded chain read-only over JSON-RPC on 127.0.0.1 (writes are refused)."""
    from scanseal.ledger import LedgerConfig, serve_rpc

    def ready(bound: int) -> None:
        _out.print(f"read-only JSON-RPC of the embedded chain on http://127.0.0.1:{bound}")
        sys.stdout.flush()

    try:
        serve_rpc(LedgerConfig.load(config), port, ready)
    except KeyboardInterrupt:
        return


def _print(shown: dict[str, Any]) -> None:
    _out.print(f"transaction {shown['hash']} on chain {shown['chain_id']}")
    _out.print(f"  block     {shown['block']} ({shown['block_hash']}), time {shown['timestamp']}")
    _out.print(f"  from      {shown['from']}")
    target = shown["to"] or f"(creates {shown['contract_created']})"
    suffix = "  ImageRegistry" if shown["to_image_registry"] else ""
    _out.print(f"  to        {target}{suffix}")
    _out.print(f"  status    {shown['status']}")
    _out.print(f"  gas       {shown['gas_used']} used of {shown['gas_limit']}")
    if shown["value"]:
        _out.print(f"  value     {shown['value']} wei")
    call = shown["call"]
    if call is not None:
        args = ", ".join(f"{name}={_short(value)}" for name, value in call["args"].items())
        _out.print(f"  call      {call['function']}({args})")
    for event in shown["events"]:
        if event["event"] is None:
            _out.print(f"  event     (not ImageRegistry's) from {event['address']}")
            continue
        fields = ", ".join(f"{name}={_short(value)}" for name, value in event["fields"].items())
        _out.print(f"  event     {event['event']}({fields})")


def _short(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value
