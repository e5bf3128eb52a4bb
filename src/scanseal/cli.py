"""The ``scanseal`` command.

Each concern contributes a Typer group from ``scanseal._cli``, loaded when its command is looked
up (``scanseal._commands``, so ``--version`` imports none of them); this module assembles them and
turns every :class:`~scanseal.errors.ScanSealError` into one line on stderr and its exit code,
so a user's mistake never shows a traceback. What escapes unmapped is still one line: a file
system or database fault gets its usual code, anything else exit 1 (``SCANSEAL_DEBUG=1`` shows
the traceback). Library warnings (pydicom guessing its way through a
broken header, Pillow's decompression-bomb notice) are silenced too: ScanSeal refuses such input
with its own one-line reason, and a warning above it would be noise.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Final, NoReturn

import typer
from rich.console import Console

from scanseal import __version__, _passphrase
from scanseal._commands import LazyGroup
from scanseal.errors import ScanSealError

app = typer.Typer(
    cls=LazyGroup,  # each command module is imported when its command is looked up
    name="scanseal",
    help="Seal, share, open and audit medical images between institutions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_stderr = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

DEBUG_ENV: Final = "SCANSEAL_DEBUG"
"""Set to 1 to print the traceback of an unexpected failure above its one line."""
INTERNAL_ERROR: Final = 1
"""Exit code of a failure ScanSeal did not anticipate (a bug; README's exit-code table)."""


PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        metavar="PATH",
        help="Read the passphrase of every identity this command unlocks from the first line "
        "of PATH (before or after the command: scanseal send ... --passphrase-file PATH).",
    ),
]
PassphraseFd = Annotated[
    int | None,
    typer.Option(
        "--passphrase-fd",
        metavar="N",
        min=0,
        help="Read that passphrase from the first line of open file descriptor N, then close it.",
    ),
]


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    passphrase_file: PassphraseFile = None,
    passphrase_fd: PassphraseFd = None,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """Options for the whole invocation: where the passphrase of each unlock comes from (before
    ``$SCANSEAL_PASSPHRASE`` and the prompt), read once here and forgotten when it ends."""
    if version:
        typer.echo(f"scanseal {__version__}")
        raise typer.Exit(0)
    context.call_on_close(_passphrase.forget)
    warning = _passphrase.choose(passphrase_file, passphrase_fd)
    if warning is not None:
        _stderr.print(f"warning: {warning}", markup=False)


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


ROOT_OPTIONS: Final = ("--passphrase-file", "--passphrase-fd")
"""Options of the whole invocation that may also be written after the command."""


def hoist_root_options(args: list[str]) -> list[str]:
    """``seal … --passphrase-file F`` as ``--passphrase-file F seal …``: the passphrase options
    belong to the root command (one source for every unlock of the run), and people write them
    after the command as they do every other option. Nothing after ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg.split("=", 1)[0] not in ROOT_OPTIONS:
            rest.append(arg)
            index += 1
            continue
        width = 1 if "=" in arg else 2  # --name=value, or --name value
        front.extend(args[index : index + width])
        index += width
    return front + rest


def command_of(args: list[str]) -> str | None:
    """The command word of ``args`` as :func:`hoist_root_options` leaves them (root options
    first), or None when there is none."""
    index = 0
    while index < len(args) and args[index].split("=", 1)[0] in ROOT_OPTIONS:
        index += 1 if "=" in args[index] else 2
    return args[index] if index < len(args) else None


def _run() -> None:
    sys.argv[1:] = hoist_root_options(sys.argv[1:])
    if command_of(sys.argv[1:]) == "serve":
        # serve rescans its members on SIGHUP once the gateway is open, seconds from now; until
        # then SIGHUP's default action would kill it (a reload right after a start): ignore it
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        code = app(standalone_mode=False)  # click returns a typer.Exit's code in this mode
    except ScanSealError as error:
        _fail(error)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        _stderr.print("aborted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        _stderr.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as error:
        code = getattr(error, "exit_code", None)
        if isinstance(code, int) and hasattr(error, "show"):  # click usage errors
            error.show()
            sys.exit(code)
        _last_resort(error)
    except BaseException as error:
        if type(error).__module__ != "pyo3_runtime":  # SystemExit and the like pass through
            raise
        _last_resort(error)  # a panic in a native extension, missed where it was called
    if isinstance(code, int) and code != 0:
        sys.exit(code)


def _fail(error: ScanSealError) -> NoReturn:
    _stderr.print(f"error: {error.reason}", markup=False)
    sys.exit(error.exit_code)


def _last_resort(error: BaseException) -> NoReturn:
    """One line for what no ScanSeal code mapped: a file system or database fault, else a bug.

    An ``OSError`` or a fault of an SQLite file met where ScanSeal did not expect it gets the
    mapping ScanSeal uses where it does expect it (``scanseal._disk``, ``scanseal._sqlite``).
    Anything else is a bug: exit 1 with its type and message; ``SCANSEAL_DEBUG=1`` adds the
    traceback.
    """
    import sqlite3

    from scanseal._disk import disk_error
    from scanseal._sqlite import database_error

    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    mapped: ScanSealError | None = None
    if isinstance(error, OSError):
        mapped = disk_error(error)
    elif isinstance(error, sqlite3.Error):
        mapped = database_error(error)
    if mapped is not None:
        _fail(mapped)
    detail = " ".join(str(error).split())[:300] or "no detail"
    _stderr.print(
        f"error: internal error ({type(error).__name__}: {detail}); "
        f"run with {DEBUG_ENV}=1 for the traceback",
        markup=False,
    )
    sys.exit(INTERNAL_ERROR)
