"""The ``scanseal`` command.

Each concern contributes a Typer group from ``scanseal._cli``; this module assembles them and
turns every :class:`~scanseal.errors.ScanSealError` into one line on stderr and its exit code,
so a user's mistake never shows a traceback. Library warnings (pydicom guessing its way through a
broken header, Pillow's decompression-bomb notice) are silenced too: ScanSeal refuses such input
with its own one-line reason, and a warning above it would be noise.
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console

from scanseal import __version__
from scanseal.errors import ScanSealError

app = typer.Typer(
    name="scanseal",
    help="Seal, share, open and audit medical images between institutions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"scanseal {__version__}")
        raise typer.Exit(0)


def _register_groups() -> None:
    """Attach every command group; kept in one place so the command tree is easy to read."""
    from scanseal._cli import agent, deid, gateway, keys, ledger, screen, sealing, storage

    app.add_typer(keys.app, name="keys")
    sealing.register(app)
    storage.register(app)
    ledger.register(app)
    gateway.register(app)
    screen.register(app)
    agent.register(app)
    deid.register(app)


_register_groups()


def main() -> None:
    """Entry point: run the app and map ScanSeal errors to one line and an exit code.

    Python warnings are ignored unless the user asked for them (``python -W`` or
    ``PYTHONWARNINGS``): ScanSeal itself never warns, and what its libraries warn about is
    either refused with a ScanSealError or harmless. Errors are not warnings and still surface.
    """
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("ignore")
        _run()


def _run() -> None:
    try:
        app(standalone_mode=False)
    except ScanSealError as error:
        _stderr.print(f"error: {error.reason}", markup=False)
        sys.exit(error.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        _stderr.print("aborted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        _stderr.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as usage:  # click usage errors carry their own exit code
        code = getattr(usage, "exit_code", None)
        if isinstance(code, int) and hasattr(usage, "show"):
            usage.show()
            sys.exit(code)
        raise
