"""``scanseal screen FILE…``: score images for manipulation before they are sealed.

Each file is screened on its own: a malformed one gets its ingest error on its own output line
while the others are still screened; at the end, one error line on stderr and exit code 2 say
how many could not be screened. A flagged image is a result, not an error (exit 0); sealing
with ``--screen block`` is the way to stop on it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scanseal.detect import Detector, Screening, default_detector
from scanseal.errors import InvalidInput

_out = Console(highlight=False, soft_wrap=True)


def screen(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG images to screen.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line per input.")
    ] = False,
    heatmap: Annotated[
        Path | None,
        typer.Option(
            "--heatmap",
            help="Write NAME.heatmap.png per input here: the heat map on the image at its own "
            "size, with region boxes, score, threshold and legend (never overwrites a file).",
        ),
    ] = None,
) -> None:
    """Score images for tampering and say where (one line per input, in order)."""
    detector = default_detector()
    if heatmap is not None:
        heatmap.mkdir(parents=True, exist_ok=True)
    failed, written = 0, set[str]()
    for path in files:
        try:
            result = detector.screen(path)
        except InvalidInput as error:
            failed += 1
            _report_error(path, error, as_json)
            continue
        if heatmap is not None:
            _write_overlay(detector, result, heatmap, written)
        _report(result, as_json)
    if failed:
        raise InvalidInput(f"{failed} of {len(files)} inputs could not be screened")


def _report(result: Screening, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    verdict = "TAMPERED" if result.tampered else "ok"
    boxes = " ".join(f"[{x},{y},{w},{h}]" for x, y, w, h in result.regions)
    _out.print(
        f"{verdict:8} {result.score:.3f} (threshold {result.threshold:.3f})  {result.path}"
        + (f"  regions {boxes}" if boxes else ""),
        markup=False,
    )


def _report_error(path: Path, error: InvalidInput, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"path": str(path), "error": error.reason}))
    else:
        _out.print(f"{'ERROR':8} {error.reason}", markup=False)


def _write_overlay(
    detector: Detector, result: Screening, directory: Path, written: set[str]
) -> None:
    """``NAME.heatmap.png``; a second input with the same file name gets ``NAME-2…``.

    An existing file is never replaced (InvalidInput naming it), and a failed write leaves none.
    """
    name, copy = result.path.name, 1
    while name in written:
        copy += 1
        name = f"{result.path.name}-{copy}"
    written.add(name)
    target = directory / f"{name}.heatmap.png"
    encoded = io.BytesIO()
    detector.heatmap(result).save(encoded, format="PNG")
    try:
        handle = target.open("xb")
    except OSError as error:  # FileExistsError included: "File exists"
        raise InvalidInput(f"cannot write heat map {target}: {error.strerror}") from None
    with handle:
        try:
            handle.write(encoded.getvalue())
        except OSError as error:
            handle.close()
            target.unlink(missing_ok=True)
            raise InvalidInput(f"cannot write heat map {target}: {error.strerror}") from None


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
