"""``scanseal ledger``: the shared ImageRegistry seen by its owner.

Departments share one chain and one contract: the first department's gateway deploys it (and so
owns it), then makes every other department's gateway an admin, since a gateway must be an admin
to enroll its members and report accesses. ``deploy`` deploys (or finds) the contract and prints
its address for the other departments' ``[ledger] contract``; ``admin add CARD`` and
``admin remove CARD`` appoint and dismiss an admin; ``admin list`` shows who is one.

The signing identity is ``--as NAME``, else the ``[gateway] identity`` of the configuration.
Whether it owns the contract is read from the chain before its passphrase is asked for: anyone
else is refused with one line (exit 4). On the embedded chain a write needs the home's ``serve``
lock: the chain lives in one process's memory and journal, so ``scanseal serve`` must be stopped
(exit 5 naming its PID otherwise). On a JSON-RPC node they run beside a serving gateway, but
they sign with its account, so the gateway then meets a nonce it did not send: docs/DEPLOY.md
runs them while the owner's gateway is stopped.

``tx HASH`` shows one transaction of the configured chain (embedded or JSON-RPC, or ``--rpc``):
block, sender, recipient, status, gas, and for the ImageRegistry the function it called and the
events it emitted, decoded with the committed ABI. ``rpc`` serves the embedded chain read-only
over JSON-RPC on 127.0.0.1 for external tools. Both read the embedded chain as a replica of its
journal and take no lock, so they run beside ``scanseal serve``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from scanseal._cli._common import AsName, ConfigOption, unlock_identity
from scanseal._lock import home_lock
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.errors import AccessDenied, InvalidInput, NotFound

if TYPE_CHECKING:  # web3 and py-evm load only when a command opens the chain
    from eth_account.signers.local import LocalAccount

    from scanseal.ledger import Ledger, LedgerConfig

app = typer.Typer(
    help="The shared ImageRegistry: deploy it, and appoint other departments' gateways as admins.",
    no_args_is_help=True,
)
admin = typer.Typer(
    help="Department admins of the contract (the owner's gateway appoints them).",
    no_args_is_help=True,
)
app.add_typer(admin, name="admin")

_out = Console(markup=False, highlight=False, soft_wrap=True)

CardArgument = Annotated[
    Path, typer.Argument(help="Identity card of the other department's gateway (keys card).")
]


@app.command("deploy")
def deploy(as_name: AsName = None, config: ConfigOption = None) -> None:
    """Deploy the ImageRegistry (its deployer owns it), or show the one already deployed.

    Prints the address the other departments set as contract in their ledger table."""
    from scanseal.ledger import Ledger

    settings = _ledger_config(config)
    name = _signer(as_name, config)
    Keystore().card(name)  # an unknown identity fails before the passphrase is asked for
    with ExitStack() as held:
        _hold_embedded(settings, held)
        identity = unlock_identity(name)
        ledger = held.enter_context(Ledger.open(settings, deployer=identity.account))
        chain_id, owner = ledger.chain.chain_id, ledger.owner()
        _out.print(f"ImageRegistry {ledger.address} on chain {chain_id}, owner {owner}")


@admin.command("add")
def add(card: CardArgument, as_name: AsName = None, config: ConfigOption = None) -> None:
    """Make the gateway of CARD an admin of the contract (owner only)."""
    target = IdentityCard.load(card)
    with _as_owner(as_name, config) as (ledger, signer):
        if ledger.is_admin(target.address):
            _out.print(f"{target.name} ({target.address}) is already an admin")
            return
        receipt = ledger.set_admin(_unlock(signer), target.address, True)
    _out.print(
        f"{target.name} ({target.address}, fingerprint {target.fingerprint}) is now an admin; "
        f"tx {receipt.tx_hash}"
    )


@admin.command("remove")
def remove(
    card: Annotated[str, typer.Argument(help="Card file or 0x address of the admin.")],
    as_name: AsName = None,
    config: ConfigOption = None,
) -> None:
    """Stop the gateway of CARD being an admin (owner only); its records stay on the ledger."""
    label, address = _account(card)
    with _as_owner(as_name, config) as (ledger, signer):
        if address == ledger.owner():
            raise InvalidInput(f"{label} is the owner, which is always an admin")
        if not ledger.is_admin(address):
            _out.print(f"{label} is not an admin")
            return
        receipt = ledger.set_admin(_unlock(signer), address, False)
    _out.print(f"{label} is no longer an admin; tx {receipt.tx_hash}")


@admin.command("list")
def list_admins(config: ConfigOption = None) -> None:
    """Print the owner and every admin it appointed, one address a line."""

    with _deployed(_ledger_config(config), read_only=True) as ledger:
        _out.print(f"{ledger.owner()}  owner")
        for account in ledger.admins():
            _out.print(f"{account}  admin")


# --- helpers ---------------------------------------------------------------------------------


@contextmanager
def _as_owner(as_name: str | None, config: Path | None) -> Iterator[tuple[Ledger, str]]:
    """The open ledger and the signer's name, once the signer is known to own the contract
    (checked from its public card, before any passphrase)."""

    settings = _ledger_config(config)
    name = _signer(as_name, config)
    address = Keystore().card(name).address
    with ExitStack() as held:
        _hold_embedded(settings, held)
        ledger = held.enter_context(_deployed(settings))
        owner = ledger.owner()
        if owner != address:
            raise AccessDenied(
                f"{name} ({address}) does not own the ImageRegistry at {ledger.address} "
                f"(its owner is {owner}); only the owner appoints admins"
            )
        yield ledger, name


def _deployed(settings: LedgerConfig, *, read_only: bool = False) -> Ledger:
    """The ledger at the configured or saved contract; none yet says how to make one.
    ``read_only``: a reader beside a running gateway (it writes nothing)."""
    from scanseal.ledger import Ledger

    try:
        return Ledger.open(settings, read_only=read_only)
    except NotFound as missing:
        raise NotFound(
            f"{missing.reason}: run scanseal ledger deploy (or start scanseal serve) first, or "
            "set contract in the ledger table"
        ) from None


def _unlock(name: str) -> LocalAccount:
    return unlock_identity(name).account


def _hold_embedded(settings: LedgerConfig, held: ExitStack) -> None:
    """The embedded chain has one writer: take the home's serve lock before opening it."""
    if settings.backend == "embedded":
        held.enter_context(home_lock("serve"))


def _ledger_config(config: Path | None) -> LedgerConfig:
    from scanseal.ledger import LedgerConfig

    return LedgerConfig.load(config)


def _signer(as_name: str | None, config: Path | None) -> str:
    """``--as``, else the configuration's gateway identity (the contract's deployer)."""
    if as_name:
        return as_name
    from scanseal.service.config import GatewayConfig

    return GatewayConfig.load(config).identity


def _account(text: str) -> tuple[str, str]:
    """(label, checksummed address) from a card file or a 0x address."""
    from eth_utils.address import is_hex_address, to_checksum_address

    if is_hex_address(text):
        address = to_checksum_address(text)
        return address, address
    path = Path(text)
    if not path.is_file():
        raise InvalidInput(f"{text} is neither a card file nor a 0x address")
    card = IdentityCard.load(path)
    return f"{card.name} ({card.address})", card.address


@app.command("tx")
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


@app.command("rpc")
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
