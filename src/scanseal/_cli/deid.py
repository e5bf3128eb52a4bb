"""``scanseal deid``, ``reid`` and ``deid-key``: PS3.15 de-identification of DICOM files.

The key and the tokens stay with the sender: with both, ``reid`` restores an instance that came
back (a second opinion, a research result); without them nobody can link it to the patient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scanseal._cli._common import BurnedInOption, KeepOption, warn_burned_in

_out = Console(markup=False, highlight=False, soft_wrap=True)

KeyOption = Annotated[
    Path, typer.Option("--key", help="The sender's de-identification key file (deid-key).")
]
CleanOption = Annotated[
    list[str] | None,
    typer.Option(
        "--clean",
        help="A PS3.15 Clean option (repeatable): descriptors (kept with identifying words "
        "struck out), structured-content (SR content kept, identifying text items cleaned).",
    ),
]


def deid_key(path: Annotated[Path, typer.Argument(help="Key file to create (mode 0600).")]) -> None:
    """Create a de-identification key; keep it safe, it alone re-identifies."""
    from scanseal.dicom.deid_files import new_key_file

    new_key_file(path)
    _out.print(f"key written to {path}", markup=False)


def deid(
    files: Annotated[list[Path], typer.Argument(help="DICOM files to de-identify.")],
    outdir: Annotated[Path, typer.Option("-o", "--output", help="Directory for the results.")],
    key: KeyOption,
    keep: KeepOption = None,
    clean: CleanOption = None,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens",
            help="Where tokens go (default $SCANSEAL_HOME/deid-tokens/NAME, NAME the name of "
            "OUTPUT); never inside OUTPUT, never send them.",
        ),
    ] = None,
    allow_burned_in: BurnedInOption = False,
) -> None:
    """De-identify (PS3.15 Basic Profile) into OUTPUT; nothing is written if any input fails.

    Pixels are not de-identified: an image whose pixels may show text (BurnedInAnnotation YES,
    or absent on an ultrasound or secondary capture) is refused unless --allow-burned-in."""
    from scanseal.dicom import choose_options
    from scanseal.dicom.deid_files import default_tokens, deidentify_files, load_key

    chosen = choose_options(keep or [], clean or [])
    secret = load_key(key)
    destination = tokens or default_tokens(outdir)
    written = deidentify_files(files, secret, chosen, outdir, destination, allow_burned_in)
    for item in written:
        _out.print(f"{item.source} -> {item.output}  token {item.token}", markup=False)
        warn_burned_in(item)


def reid(
    file: Annotated[Path, typer.Argument(help="A de-identified DICOM file.")],
    token: Annotated[Path, typer.Option("--token", help="Its re-identification token.")],
    key: KeyOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="The restored file.")],
) -> None:
    """Restore the original elements of an instance this key de-identified."""
    from scanseal.dicom.deid_files import load_key, reidentify_file

    reidentify_file(file, token, load_key(key), output)
    _out.print(f"{file} -> {output}  (re-identified)", markup=False)


def register(app: typer.Typer) -> None:
    app.command("deid")(deid)
    app.command("reid")(reid)
    app.command("deid-key")(deid_key)
