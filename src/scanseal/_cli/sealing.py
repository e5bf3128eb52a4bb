"""``scanseal seal``, ``scanseal open`` and ``scanseal verify``: local envelopes and manifests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from scanseal._cli.keys import unlock_identity
from scanseal.crypto.identity import Identity, IdentityCard, Keystore
from scanseal.crypto.stanzas import DEFAULT_KIND, RECIPIENT_KINDS
from scanseal.errors import InvalidInput
from scanseal.ingest import read_metadata
from scanseal.transfer.local import Progress as ProgressCallback
from scanseal.transfer.local import open_sealed, seal_file, verify_sealed

IDENTITY_ENV = "SCANSEAL_IDENTITY"
_out = Console(highlight=False, soft_wrap=True)

AsName = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Your identity in the keystore (default: $SCANSEAL_IDENTITY, or the only one there).",
    ),
]
EnvelopeArg = Annotated[Path, typer.Argument(metavar="ENVELOPE", help="The envelope file.")]


def _identity_name(name: str | None) -> str:
    """Resolve ``--as``: explicit, then the environment, then the keystore's only identity."""
    if name:
        return name
    if env := os.environ.get(IDENTITY_ENV):
        return env
    names = Keystore().names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise InvalidInput("no identity in the keystore: run 'scanseal keys new NAME' first")
    raise InvalidInput(f"several identities ({', '.join(names)}): choose one with --as NAME")


def _unlock(name: str | None) -> Identity:
    return unlock_identity(_identity_name(name))


@contextmanager
def _bar(label: str, total: int) -> Iterator[ProgressCallback]:
    """A Rich progress bar on stderr, shown only when stderr is a terminal."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def seal(
    file: Annotated[Path, typer.Argument(help="DICOM, PNG or JPEG image to seal.")],
    to: Annotated[list[Path], typer.Option("--to", help="Recipient identity card (repeatable).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Envelope to write.")],
    kind: Annotated[
        str, typer.Option("--kind", help=f"Key wrapping: one of {', '.join(RECIPIENT_KINDS)}.")
    ] = DEFAULT_KIND,
    as_name: AsName = None,
) -> None:
    """Seal an image for named recipients: envelope plus signed manifest beside it."""
    read_metadata(file)  # refuse a bad image before asking for a passphrase
    cards = [IdentityCard.load(path) for path in to]
    uploader = _unlock(as_name)
    with _bar(f"sealing {file.name}", file.stat().st_size) as progress:
        sealed = seal_file(file, cards, uploader, output, kind=kind, progress=progress)
    chain = sealed.manifest.chain
    _out.print(f"sealed {file} -> {sealed.envelope}")
    _out.print(f"manifest {sealed.manifest_path}")
    _out.print(f"H3 {chain.h3.hex()}  recipients {', '.join(c.name for c in cards)}")


def open_(
    envelope_path: EnvelopeArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the image.")],
    as_name: AsName = None,
) -> None:
    """Decrypt an envelope and check every hash; the file appears only if all checks hold."""
    identity = _unlock(as_name)
    size = envelope_path.stat().st_size if envelope_path.is_file() else 0
    with _bar(f"opening {envelope_path.name}", size) as progress:
        opened = open_sealed(envelope_path, identity, output, progress=progress)
    uploader = opened.manifest.uploader
    _out.print(f"opened {envelope_path} -> {opened.path}")
    _out.print(f"verified: signed by {uploader.name} ({uploader.address}); H1-H3 and pixels match")


def verify(
    envelope_path: EnvelopeArg,
    as_name: Annotated[
        str | None,
        typer.Option("--as", help="Also decrypt and check the plaintext as this recipient."),
    ] = None,
) -> None:
    """Check an envelope's signature and hashes (with --as, the plaintext hashes too)."""
    identity = unlock_identity(as_name) if as_name else None
    report = verify_sealed(envelope_path, identity)
    for check in report.checks:
        _out.print(f"ok  {check}")
    level = "full (decrypted)" if report.decrypted else "public (no key used)"
    _out.print(f"verified {envelope_path}: {level}")


def register(app: typer.Typer) -> None:
    app.command("seal")(seal)
    app.command("open")(open_)
    app.command("verify")(verify)
