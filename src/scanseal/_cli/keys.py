"""``scanseal keys``: create identities, hand out their cards, and check that they unlock.

The passphrase comes from the root ``--passphrase-file`` or ``--passphrase-fd`` when given, else
from ``$SCANSEAL_PASSPHRASE`` when set (scripts, CI), otherwise from a hidden prompt on the
terminal (``_common.read_passphrase``, which every command uses); ``keys passwd`` reads the new
one from ``--new-passphrase-file`` or asks for it twice. Cards show their fingerprint,
the short form of the card hash for reading aloud (docs/KEYS.md §2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from scanseal import _passphrase
from scanseal._cli._common import read_passphrase, unlock_identity
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.errors import InvalidInput

app = typer.Typer(
    help="Create identities (an Ethereum signing key plus transport keys) and share their cards.",
    no_args_is_help=True,
)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

NAME_ARGUMENT = typer.Argument(..., help="Identity name: 1-64 of a-z 0-9 . _ -")
OUTPUT_OPTION = typer.Option(
    None, "-o", "--output", help="Write the card to FILE instead of stdout."
)
CARD_ARGUMENT = typer.Argument(..., help="A card file someone sent you.")
NEW_PASSPHRASE_FILE_OPTION = typer.Option(
    None,
    "--new-passphrase-file",
    help="Read the new passphrase from the first line of FILE instead of asking for it twice.",
)


@app.command("new")
def new(name: str = NAME_ARGUMENT) -> None:
    """Create identity NAME and store it encrypted under a passphrase."""
    store = Keystore()
    if store.path(name).exists():  # refuse a bad or taken name before the prompt, not after it
        raise InvalidInput(f"identity {name!r} already exists at {store.path(name)}")
    identity = store.create(name, read_passphrase(name, confirm=True))
    _out.print(_card_table(identity.card, title=f"new identity, stored in {store.path(name)}"))


@app.command("card")
def card(name: str = NAME_ARGUMENT, output: Path | None = OUTPUT_OPTION) -> None:
    """Print (or write) the public card of NAME: what senders need to address you. Its
    fingerprint goes to stderr, so the card on stdout can be redirected to a file as it is."""
    entry = Keystore().card(name)
    text = entry.to_json()
    if output is None:
        typer.echo(text, nl=False)
        _err.print(f"fingerprint {entry.fingerprint}", markup=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot write {output}: {error.strerror or error}") from None
    _err.print(f"wrote the card of {name} to {output}", markup=False)
    _err.print(f"fingerprint {entry.fingerprint}", markup=False)


@app.command("list")
def list_identities() -> None:
    """List the identities in the keystore."""
    store = Keystore()
    names = store.names()
    if not names:
        _err.print(f"no identities in {store.root}", markup=False)
        return
    table = Table("name", "address", "created", "fingerprint")
    for name in names:
        entry = store.card(name)
        table.add_row(entry.name, entry.address, entry.created, entry.fingerprint)
    _out.print(table)


@app.command("check")
def check(name: str = NAME_ARGUMENT) -> None:
    """Unlock NAME to confirm the passphrase and that its keystore file is intact."""
    identity = unlock_identity(name)
    _out.print(f"{identity.name} unlocks: {identity.address}", markup=False)


@app.command("passwd")
def passwd(
    name: str = NAME_ARGUMENT, new_passphrase_file: Path | None = NEW_PASSPHRASE_FILE_OPTION
) -> None:
    """Change the passphrase of NAME: the current one is asked (or read) first, then the new
    one; the keystore file is rewritten in one step and the old passphrase opens nothing."""
    store = Keystore()
    identity = unlock_identity(name, store)  # a wrong current passphrase stops here, file as is
    store.replace(identity, _new_passphrase(name, new_passphrase_file))
    _out.print(f"{name}: passphrase changed ({store.path(name)})", markup=False)


@app.command("inspect")
def inspect(path: Path = CARD_ARGUMENT) -> None:
    """Verify a card file and show who it is for (exit 3 if it was tampered with)."""
    _out.print(_card_table(IdentityCard.load(path), title=f"verified card {path}"))


def _new_passphrase(name: str, source: Path | None) -> str:
    """The new passphrase: from ``--new-passphrase-file``, else asked twice on the terminal
    (never from ``$SCANSEAL_PASSPHRASE`` or ``--passphrase-file``, which give the current one)."""
    if source is not None:
        new, warning = _passphrase.read_file(source, "--new-passphrase-file")
        if warning is not None:
            _err.print(f"warning: {warning}", markup=False)
        return new
    if not sys.stdin.isatty():
        raise InvalidInput(f"the new passphrase for {name} is needed: give --new-passphrase-file")
    answer = typer.prompt(
        f"New passphrase for {name}", hide_input=True, confirmation_prompt=True, err=True
    )
    return str(answer)


def _card_table(card: IdentityCard, title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("name", card.name)
    table.add_row("address", card.address)
    table.add_row("created", card.created)
    for kind, key in card.keys.items():
        table.add_row(f"key id {kind}", key.key_id.hex())
    table.add_row("card hash", card.card_hash.hex())
    table.add_row("fingerprint", card.fingerprint)
    return table


__all__ = ["app"]
