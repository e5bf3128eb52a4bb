"""``scanseal screen FILE…``: score images for manipulation before they are sealed.

Each file is screened on its own: a malformed one gets its ingest error on its own output line
while the others are still screened; at the end, one error line on stderr and exit code 2 say
how many could not be screened. A flagged image is a result, not an error (exit 0); sealing
with ``--screen block`` is the way to stop on it. ``--heatmap DIR`` must name a directory (it
is created if missing; an existing file there is refused before anything is screened); heat
maps of an earlier run in it are replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scanseal._disk import disk_errors
from scanseal.detect import Detector, Screening, default_detector
from scanseal.errors import InvalidInput

_out = Console(markup=False, highlight=False, soft_wrap=True)


def screen(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG images to screen.")],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per line per input (with its false_alarm_rate)."
        ),
    ] = False,
    heatmap: Annotated[
        Path | None,
        typer.Option(
            "--heatmap",
            help="Write NAME.heatmap.png per input here: the heat map on the image at its own "
            "size, with region boxes, score, threshold and legend (replaces an earlier one).",
        ),
    ] = None,
) -> None:
    """Score images for tampering and say where (one line per input, in order)."""
    if heatmap is not None:
        _heatmap_directory(heatmap)
    detector = default_detector()
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


def _heatmap_directory(directory: Path) -> None:
    """Create the ``--heatmap`` directory, or refuse a path that is not one (before screening)."""
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"--heatmap {directory} exists and is not a directory")
    with disk_errors(directory):
        directory.mkdir(parents=True, exist_ok=True)


def _write_overlay(
    detector: Detector, result: Screening, directory: Path, written: set[str]
) -> None:
    """``NAME.heatmap.png``; a second input with the same file name gets ``NAME-2…``.

    A heat map left by an earlier run is replaced (it is derived from the image, and the run
    that asks again wants the current one); the new file is written beside it and renamed
    over it, so a failure leaves the old one or none, never half of one.
    """
    name, copy = result.path.name, 1
    while name in written:
        copy += 1
        name = f"{result.path.name}-{copy}"
    written.add(name)
    target = directory / f"{name}.heatmap.png"
    if target.is_dir():
        raise InvalidInput(f"cannot write heat map {target}: it is a directory")
    partial = target.with_name(f".{target.name}.part")
    try:
        with disk_errors(target):
            detector.heatmap(result).save(partial, format="PNG")
            partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
