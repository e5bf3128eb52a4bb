"""``scanseal screen FILE…``: score images for manipulation before they are sealed.

Each file is screened on its own: a malformed one gets its ingest error on its own line (and a
non-zero exit at the end) while the others are still screened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scanseal.detect import Screening, default_detector
from scanseal.detect.heat import overlay
from scanseal.errors import InvalidInput, ScanSealError

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def screen(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG images to screen.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line per input.")
    ] = False,
    heatmap: Annotated[
        Path | None,
        typer.Option("--heatmap", help="Write a PNG overlay of the heat map per input here."),
    ] = None,
) -> None:
    """Score images for tampering and say where; exit 1 if any is flagged, 2 if any is bad."""
    detector = default_detector()
    if heatmap is not None:
        heatmap.mkdir(parents=True, exist_ok=True)
    flagged, failed = False, 0
    for path in files:
        try:
            result = detector.screen(path)
        except ScanSealError as error:
            failed = failed or error.exit_code
            _report_error(path, error, as_json)
            continue
        flagged = flagged or result.tampered
        if heatmap is not None:
            _write_overlay(result, heatmap)
        _report(result, as_json)
    if failed:
        raise typer.Exit(failed)
    if flagged:
        raise typer.Exit(1)


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


def _report_error(path: Path, error: ScanSealError, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"path": str(path), "error": error.reason}))
    else:
        _err.print(f"error: {error.reason}", markup=False)


def _write_overlay(result: Screening, directory: Path) -> None:
    target = directory / f"{result.path.name}.heatmap.png"
    try:
        overlay(result.plane, result.heat).save(target, format="PNG")
    except OSError as error:
        raise InvalidInput(f"cannot write heat map {target}: {error.strerror}") from None


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
