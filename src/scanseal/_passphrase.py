"""The passphrase of ``scanseal --passphrase-file PATH`` or ``--passphrase-fd N``: one for the
whole invocation that neither sits in the environment nor needs a terminal (systemd credentials,
a secret mounted by an orchestrator, a pipe from a password manager).

The root command (``scanseal.cli``) reads the source once, before its subcommand runs, and every
unlock in that invocation uses it (``scanseal._cli._common.read_passphrase``: this source, then
``$SCANSEAL_PASSPHRASE``, then the prompt). The passphrase is the first line without its line
ending (``\\n`` or ``\\r\\n``), UTF-8. A regular file that group or others may access is read
with a warning (returned to the caller, which prints it) rather than refused: files mounted by
container runtimes are often 0644, and refusing them would push people back to the environment
variable, which every child process inherits. A missing file, an unreadable one, a closed
descriptor or an empty first line is one ``InvalidInput`` line, exit 2.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scanseal.errors import InvalidInput

MAX_LINE: Final = 4096
"""The longest first line accepted, in bytes: a passphrase, not a file that was named by mistake."""


@dataclass
class _Chosen:
    """The passphrase the root options supplied for this invocation, if any."""

    passphrase: str | None = None


_chosen = _Chosen()


def choose(file: Path | None, fd: int | None) -> str | None:
    """Read the passphrase from ``file`` or descriptor ``fd`` (at most one) for this invocation;
    the warning to show when the file is open to group or others, else None."""
    _chosen.passphrase = None
    if file is not None and fd is not None:
        raise InvalidInput("give --passphrase-file or --passphrase-fd, not both")
    warning = None
    if file is not None:
        _chosen.passphrase, warning = read_file(file, "--passphrase-file")
    elif fd is not None:
        _chosen.passphrase = _from_fd(fd)
    return warning


def forget() -> None:
    """Drop the chosen passphrase (when the invocation ends, so it does not outlive it)."""
    _chosen.passphrase = None


def chosen() -> str | None:
    """The passphrase ``--passphrase-file`` or ``--passphrase-fd`` gave, or None."""
    return _chosen.passphrase


def read_file(path: Path, option: str) -> tuple[str, str | None]:
    """The passphrase on the first line of ``path`` (given as ``option``, which errors and the
    warning name), and the warning to show when group or others may access the file, else None.
    ``--passphrase-file`` reads it so, and so does ``keys passwd --new-passphrase-file``."""
    where = f"{option} {path}"
    warning = None
    try:
        with path.open("rb") as source:
            mode = os.fstat(source.fileno()).st_mode
            if stat.S_ISREG(mode) and mode & 0o077:
                permissions = f"{stat.S_IMODE(mode):04o}"
                warning = f"{where}: group or others may read it (mode {permissions}); chmod 600 it"
            line = source.readline(MAX_LINE + 2)
    except OSError as error:
        raise InvalidInput(f"{where}: {error.strerror or error}") from None
    return _first_line(line, where), warning


def _from_fd(fd: int) -> str:
    where = f"--passphrase-fd {fd}"
    try:
        os.fstat(fd)
    except OSError:
        raise InvalidInput(f"{where}: not an open file descriptor") from None
    try:
        with open(fd, "rb", closefd=True) as source:
            line = source.readline(MAX_LINE + 2)
    except OSError as error:
        raise InvalidInput(f"{where}: {error.strerror or error}") from None
    return _first_line(line, where)


def _first_line(line: bytes, where: str) -> str:
    """``line`` without its line ending, as text; refused when empty, too long or not UTF-8."""
    text = line.removesuffix(b"\n").removesuffix(b"\r")
    if len(text) > MAX_LINE:
        raise InvalidInput(f"{where}: the first line is over {MAX_LINE} bytes")
    if not text:
        raise InvalidInput(f"{where}: the first line is empty")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{where}: the first line is not UTF-8") from None


__all__ = ["MAX_LINE", "choose", "chosen", "forget", "read_file"]
