"""``scanseal keys``: create identities, hand out their cards, check that they unlock, change
their passphrase and rotate their transport keys (docs/KEYS.md §6).

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

_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

NAME_ARGUMENT = typer.Argument(..., help="Identity name: 1-64 of a-z 0-9 . _ -")
OUTPUT_OPTION = typer.Option(
    None, "-o", "--output", help="Write the card to FILE instead of stdout."
)
CARD_ARGUMENT = typer.Argument(..., help="A card file someone sent you.")
NEW_CARD_OPTION = typer.Option(None, "-o", "--output", help="Also write the new card to FILE.")
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
    if output is None:
        typer.echo(entry.to_json(), nl=False)
        _err.print(f"fingerprint {entry.fingerprint}", markup=False)
        return
    _write_card(entry, output)
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
    """Change the passphrase of NAME.

    The current one is asked (or read) first, then the new one; the keystore file is rewritten
    in one step and the old passphrase opens nothing."""
    store = Keystore()
    identity = unlock_identity(name, store)  # a wrong current passphrase stops here, file as is
    store.replace(identity, _new_passphrase(name, new_passphrase_file))
    _out.print(f"{name}: passphrase changed ({store.path(name)})", markup=False)


@app.command("rotate")
def rotate(name: str = NAME_ARGUMENT, output: Path | None = NEW_CARD_OPTION) -> None:
    """Give NAME new transport keys and a new card.

    The old keys stay in the keystore (envelopes sealed to the old card still open); the
    signing key, and so the ledger account, stays."""
    store = Keystore()
    store.card(name)  # an unknown name, or a card file that cannot be written, fails first
    if output is not None and not output.parent.is_dir():
        raise InvalidInput(f"cannot write {output}: {output.parent} is not a directory")
    passphrase = read_passphrase(name)
    identity = store.load(name, passphrase)
    rotated = identity.rotated()
    store.replace(rotated, passphrase)
    if output is not None:
        _write_card(rotated.card, output)
    table = _card_table(rotated.card, title=f"new card of {name}, stored in {store.path(name)}")
    table.add_row("replaces", f"{identity.card.fingerprint} (its keys kept to open old envelopes)")
    _out.print(table)
    for line in _after_rotation(name, output):
        _err.print(line, markup=False)


def _after_rotation(name: str, output: Path | None) -> list[str]:
    """What is left to do once the keystore holds the new card: the ledger and the senders."""
    card = str(output) if output is not None else f"the new card (scanseal keys card {name})"
    return [
        f"next: copy {card} over {name}'s card in the members directory of each gateway that has "
        f"{name} as a member;",
        "  a gateway that owns the ledger contract registers it within seconds (at once on "
        "SIGHUP); another one logs that the owner must;",
        f"  a gateway whose own identity is {name}: restart it; give senders the new card too "
        "(a gateway refuses uploads sealed to the old one).",
    ]


@app.command("inspect")
def inspect(path: Path = CARD_ARGUMENT) -> None:
    """Verify a card file and show who it is for (exit 3 if it was tampered with)."""
    _out.print(_card_table(IdentityCard.load(path), title=f"verified card {path}"))


def _write_card(card: IdentityCard, output: Path) -> None:
    try:
        output.write_text(card.to_json(), encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot write {output}: {error.strerror or error}") from None


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
