"""``scanseal seal``, ``scanseal open`` and ``scanseal verify``: local envelopes and manifests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console

from scanseal._cli._common import (
    AsName,
    ConfigOption,
    byte_bar,
    connect,
    unlock,
    unlock_identity,
    warn_if_flagged,
)
from scanseal.crypto.identity import IdentityCard
from scanseal.crypto.stanzas import DEFAULT_KIND, RECIPIENT_KINDS
from scanseal.errors import InvalidInput
from scanseal.ingest import read_image
from scanseal.storage import BlobStore, load_config, open_store
from scanseal.transfer import (
    ScreenPolicy,
    check_seal_output,
    fetch_sealed,
    open_sealed,
    publish_manifest,
    screen_verdict,
    seal_file,
    verify_sealed,
)

SCREEN_POLICIES = ("flag", "block", "off")

_out = Console(markup=False, highlight=False, soft_wrap=True)


def seal(
    file: Annotated[Path, typer.Argument(help="DICOM, PNG or JPEG image to seal.")],
    to: Annotated[list[Path], typer.Option("--to", help="Recipient identity card (repeatable).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Envelope to write.")],
    kind: Annotated[
        str, typer.Option("--kind", help=f"Key wrapping: one of {', '.join(RECIPIENT_KINDS)}.")
    ] = DEFAULT_KIND,
    as_name: AsName = None,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Also put envelope and manifest in storage.")
    ] = True,
    config: ConfigOption = None,
    screen: Annotated[
        str,
        typer.Option(
            "--screen",
            help="Tamper screening: flag (record in the manifest), block (refuse), off.",
        ),
    ] = "flag",
) -> None:
    """Seal an image for named recipients: envelope plus signed manifest beside it."""
    if screen not in SCREEN_POLICIES:
        raise InvalidInput(f"--screen must be one of {', '.join(SCREEN_POLICIES)}, not {screen!r}")
    check_seal_output(output)  # refuse a bad output or image before asking for a passphrase
    image = read_image(file)  # parsed once, here and for sealing
    cards = [IdentityCard.load(path) for path in to]
    uploader = unlock(as_name)
    with (
        _maybe_store(store, config) as blobs,
        byte_bar(f"sealing {file.name}", file.stat().st_size) as bar,
    ):
        sealed = seal_file(
            image, cards, uploader, output, kind=kind, progress=bar, store=blobs,
            screen=cast(ScreenPolicy, screen),
        )  # fmt: skip
        receipt = publish_manifest(sealed, blobs) if blobs is not None else None
    _out.print(f"sealed {file} -> {sealed.envelope}")
    _out.print(f"manifest {sealed.manifest_path}")
    _out.print(
        f"H3 {sealed.manifest.chain.h3.hex()}  recipients {', '.join(c.name for c in cards)}"
    )
    shown = screen_verdict(sealed.manifest)
    if shown is not None and shown.not_screened is not None:  # an object without pixels
        _out.print(f"screen {shown.describe()}", markup=False)
    elif (verdict := sealed.manifest.screen) is not None:
        label = "FLAGGED as possibly tampered" if verdict["tampered"] else "not flagged"
        _out.print(f"screen {label}: score {verdict['score']:.3f} ({verdict['model_version']})")
    if receipt is not None:
        _out.print(f"envelope CID {sealed.manifest.cid}")
        _out.print(f"manifest CID {receipt}  (open or verify by this CID)")


@contextmanager
def _maybe_store(wanted: bool, config: Path | None) -> Iterator[BlobStore | None]:
    if not wanted:
        yield None
        return
    with open_store(load_config(config)) as store:
        yield store


@contextmanager
def _local_envelope(target: str, config: Path | None) -> Iterator[Path]:
    """An envelope path for ``target``: the file itself, or fetched by its manifest CID."""
    path = Path(target)
    if path.exists() or not _looks_like_cid(target):
        yield path
        return
    with (
        open_store(load_config(config)) as store,
        tempfile.TemporaryDirectory(prefix="scanseal-fetch-") as scratch,
    ):
        yield fetch_sealed(target, store, Path(scratch))


def _looks_like_cid(text: str) -> bool:
    return text.startswith(("bafy", "bafk", "Qm")) and "/" not in text


TargetArg = Annotated[
    str, typer.Argument(metavar="ENVELOPE|CID", help="Envelope file, or the manifest CID.")
]


def open_(
    target: TargetArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the image.")],
    as_name: AsName = None,
    config: ConfigOption = None,
) -> None:
    """Decrypt an envelope and check every hash; the file appears only if all checks hold."""
    identity = unlock(as_name)
    with _local_envelope(target, config) as envelope_path:
        size = envelope_path.stat().st_size if envelope_path.is_file() else 0
        with byte_bar(f"opening {envelope_path.name}", size) as progress:
            opened = open_sealed(envelope_path, identity, output, progress=progress)
    warn_if_flagged(opened.manifest, target)
    uploader = opened.manifest.uploader
    _out.print(f"opened {target} -> {opened.path}")
    _out.print(
        f"verified: signed by {uploader.name} ({uploader.address}); envelope and H1-H3 match"
    )


def verify(
    target: TargetArg,
    as_name: Annotated[
        str | None,
        typer.Option("--as", help="Also decrypt and check the plaintext as this recipient."),
    ] = None,
    config: ConfigOption = None,
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="Ask this gateway to check the record and the ledger."),
    ] = None,
    ca: Annotated[Path | None, typer.Option("--ca", help="CA certificate of the gateway.")] = None,
) -> None:
    """Check an envelope's signature and hashes (with --as, the plaintext hashes too)."""
    if gateway is not None:
        from scanseal.client import record_manifest

        with connect(gateway, ca, "-") as client:
            answer = client.verify(target)
        if "manifest" in answer:  # the uploader's signed verdict, checked against the record CID
            warn_if_flagged(record_manifest(answer["manifest"], target), target)
        for check in answer["checks"]:
            _out.print(f"ok  {check}")
        _out.print(f"verified {target} at {gateway}: public (no key used)")
        return
    identity = unlock_identity(as_name) if as_name else None
    with _local_envelope(target, config) as envelope_path:
        report = verify_sealed(envelope_path, identity)
    warn_if_flagged(report.manifest, target)
    for check in report.checks:
        _out.print(f"ok  {check}")
    level = "full (decrypted)" if report.decrypted else "public (no key used)"
    _out.print(f"verified {target}: {level}")


def register(app: typer.Typer) -> None:
    app.command("seal")(seal)
    app.command("open")(open_)
    app.command("verify")(verify)
